"""`simulate --engine ray` on a local Ray instance with 2 CPUs: the clients run as Ray actors and the federation
ends with the same global model, bit for bit, as with the default engine and the same seed."""

from __future__ import annotations

from pathlib import Path

from py_shared.safetensors_file import decode
from tests.fixtures import titanic_like_csv
from tests.py_cli.test_federated import federated_task
from tests.py_cli.test_train import cli, write_task


def simulate(tmp_path: Path, engine: str) -> tuple[list[list[str]], bytes]:
    """Run `simulate` on 2 clients for 2 rounds; returns the table's rows and the saved final model."""
    task = write_task(tmp_path / "task.json", federated_task("ray", epochs=2))
    data = tmp_path / "p.csv"
    data.write_text(titanic_like_csv(300))
    saved = tmp_path / f"{engine}.safetensors"
    ray_args = ("--ray-cpus", "2") if engine == "ray" else ()
    result = cli(
        "simulate", "--task", task, "--data", data, "--clients", "2", "--rounds", "2", "--seed", "3",
        "--no-baseline", "--engine", engine, *ray_args, "--save", saved, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "round 2/2 [########################] done: 2 participants" in result.stderr
    return [line.split() for line in result.stdout.splitlines()[1:]], saved.read_bytes()


def test_the_ray_engine_ends_with_the_same_model_as_the_local_engine(tmp_path: Path) -> None:
    local_rows, local_model = simulate(tmp_path, "local")
    ray_rows, ray_model = simulate(tmp_path, "ray")
    # Bit for bit, not within a tolerance: every client trains deterministically from the task's seed (weights,
    # shuffling) in whatever process it runs, and with 2 clients the server's running FedAvg sum,
    # (0 + a) + b, is the same float whichever update arrives first. (With 3 or more clients the arrival order
    # would change the rounding of the sum.) Only the metadata differs: each run gets its own task id.
    (local_tensors, local_meta), (ray_tensors, ray_meta) = decode(local_model), decode(ray_model)
    assert local_tensors and ray_tensors == local_tensors
    assert local_meta["task"] != ray_meta["task"]
    assert len(ray_rows) == 2 and ray_rows == local_rows  # same sample counts and federated accuracies
