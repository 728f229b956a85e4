"""`python -m py_cli train --local`: real training from disk, a progress bar, a final metrics line, clear errors."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors
import safetensors.numpy

from py_shared.task import TaskDefinition, task_from_json, task_to_json
from tests.conftest import ROOT
from tests.fixtures import digits_folder, digits_task, titanic_like_csv, titanic_like_task


def cli(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "py_cli", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_task(path: Path, task: TaskDefinition) -> Path:
    path.write_text(json.dumps(task_to_json(task)))
    return path


def final(stdout: str) -> dict[str, float]:
    line = next(line for line in stdout.splitlines() if line.startswith("final: "))
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", line)}


def test_mlp_on_a_titanic_like_csv(tmp_path: Path) -> None:
    data = tmp_path / "passengers.csv"
    data.write_text(titanic_like_csv(1000))
    saved = tmp_path / "model.safetensors"
    result = cli(
        "train",
        "--task",
        write_task(tmp_path / "t.json", titanic_like_task()),
        "--data",
        data,
        "--local",
        "--save",
        saved,
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 15/15 [" in result.stderr  # the progress bar
    assert final(result.stdout)["val_accuracy"] >= 0.75
    weights = safetensors.numpy.load(saved.read_bytes())
    assert weights["layers.0.weight"].shape == (32, 9)
    # what using the model elsewhere needs: the task, the feature order, the labels, the standardisation
    with safetensors.safe_open(saved, "np") as f:
        metadata = f.metadata()
    assert task_from_json(json.loads(metadata["task_json"])) == titanic_like_task()
    assert json.loads(metadata["features"]) == list(titanic_like_task().data.feature_columns)  # type: ignore[union-attr]
    stats = json.loads(metadata["numeric_stats"])
    rows = list(csv.DictReader(io.StringIO(data.read_text())))
    for column, mean in zip(stats["columns"], stats["mean"], strict=True):  # the training split's: near the whole's
        values = [float(r[column]) for r in rows if r[column] not in ("", "NA")]
        assert abs(mean - sum(values) / len(values)) < 0.1 * statistics.pstdev(values), column


def test_cnn_on_a_digits_image_folder(tmp_path: Path) -> None:
    folder = digits_folder(tmp_path / "digits", per_digit=100)
    result = cli("train", "--task", write_task(tmp_path / "d.json", digits_task()), "--data", folder, "--local")
    assert result.returncode == 0, result.stderr
    assert "1000 images: 800 for training, 200 for validation" in result.stderr
    assert final(result.stdout)["val_accuracy"] >= 0.90


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("bad_task", "error: invalid task: task.training.batch_size: must be at least 1"),
        ("not_json", "not valid JSON"),
        ("missing_data", "no such file or folder"),
        ("wrong_columns", "missing column(s) Pclass"),
        ("bad_image", "broken.png: cannot be read as an image"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, setup: str, message: str) -> None:
    task_json = task_to_json(titanic_like_task())
    data: Path = tmp_path / "data.csv"
    data.write_text(titanic_like_csv(50))
    if setup == "bad_task":
        task_json["training"]["batch_size"] = 0
    elif setup == "missing_data":
        data = tmp_path / "nowhere.csv"
    elif setup == "wrong_columns":
        data.write_text("a,b\n1,2\n")
    elif setup == "bad_image":
        task_json = task_to_json(digits_task())
        data = digits_folder(tmp_path / "digits", per_digit=1)
        (data / "3_000.png").write_bytes(b"not a png")
        (data / "3_000.png").rename(data / "broken.png")
        (data / "labels.csv").write_text("filename,label\nbroken.png,3\n")
    task = tmp_path / "task.json"
    task.write_text("{oops" if setup == "not_json" else json.dumps(task_json))
    result = cli("train", "--task", task, "--data", data, "--local", timeout=120)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
