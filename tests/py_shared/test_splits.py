"""Splitting data among simulated clients: the requested skew shows, and no example is lost or duplicated."""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from py_shared.data.sources import CsvSource, ImageSource, TextSource
from py_shared.data.splits import SplitSpec, client_indices, label_counts, split_source
from tests.conftest import ROOT
from tests.fixtures import digits_task, titanic_like_csv, titanic_like_task

_rng = random.Random(1)
LABELS = [_rng.randrange(10) for _ in range(5000)]


def total_variation(part: list[int]) -> float:
    """Distance between a client's label distribution and the global one (0: identical, 1: disjoint)."""
    global_share = [LABELS.count(k) / len(LABELS) for k in range(10)]
    labels = [LABELS[i] for i in part]
    return 0.5 * sum(abs(labels.count(k) / len(labels) - global_share[k]) for k in range(10))


@pytest.mark.parametrize("spec", ["iid", "dirichlet:0.1", "dirichlet:1", "quantity:0.3"])
def test_every_example_goes_to_exactly_one_client(spec: str) -> None:
    parts = client_indices(LABELS, 8, SplitSpec.parse(spec), seed=3)
    flat = [i for p in parts for i in p]
    assert sorted(flat) == list(range(len(LABELS)))  # nothing lost, nothing duplicated
    assert all(parts) and len(parts) == 8
    assert parts == client_indices(LABELS, 8, SplitSpec.parse(spec), seed=3)  # seeded
    assert parts != client_indices(LABELS, 8, SplitSpec.parse(spec), seed=4)


def test_label_skew_follows_alpha() -> None:
    skew = {
        spec: statistics.mean(total_variation(p) for p in client_indices(LABELS, 8, SplitSpec.parse(spec), seed=0))
        for spec in ["iid", "dirichlet:100", "dirichlet:1", "dirichlet:0.1"]
    }
    assert skew["iid"] < 0.05 and skew["dirichlet:100"] < 0.1
    assert skew["dirichlet:100"] < skew["dirichlet:1"] < skew["dirichlet:0.1"]
    assert skew["dirichlet:0.1"] > 0.6  # most clients see a few classes only


def test_quantity_skew_follows_alpha_and_keeps_labels_iid() -> None:
    def spread(spec: str) -> float:
        sizes = [len(p) for p in client_indices(LABELS, 8, SplitSpec.parse(spec), seed=0)]
        return statistics.pstdev(sizes) / statistics.mean(sizes)

    assert spread("iid") < 0.01 < spread("quantity:100") < spread("quantity:1") < spread("quantity:0.3")
    parts = client_indices(LABELS, 8, SplitSpec.parse("quantity:0.3"), seed=0)
    big = max(parts, key=len)
    assert total_variation(big) < 0.05


def test_specs_and_impossible_splits_are_refused_clearly() -> None:
    assert SplitSpec.parse("dirichlet:0.3") == SplitSpec("dirichlet", 0.3)
    for bad in ["dirichlet", "dirichlet:0", "quantity:x", "shuffle"]:
        with pytest.raises(ValueError, match="expected iid, dirichlet:ALPHA or quantity:ALPHA"):
            SplitSpec.parse(bad)
    with pytest.raises(ValueError, match="3 examples cannot give 4 clients one each"):
        client_indices([0, 1, 0], 4, SplitSpec("iid"))


def test_sources_split_into_sources_of_the_same_kind() -> None:
    task = titanic_like_task()
    csv = CsvSource("p.csv", titanic_like_csv(300))
    parts = split_source(task, csv, 3, SplitSpec("dirichlet", 0.5), seed=1)
    assert all(isinstance(p, CsvSource) for p in parts)
    rows = sorted(line for p in parts for line in p.text.splitlines()[1:])  # type: ignore[union-attr]
    assert rows == sorted(csv.text.splitlines()[1:])
    assert [sum(c) for c in zip(*(label_counts(task, p) for p in parts), strict=True)] == label_counts(task, csv)

    images = ImageSource([(f"{i}.png", str(i % 10), bytes([i % 256])) for i in range(100)])
    image_parts = split_source(digits_task(), images, 4, SplitSpec("iid"))
    assert sorted(n for p in image_parts for n, _, _ in p.items) == sorted(n for n, _, _ in images.items)  # type: ignore[union-attr]

    text = TextSource("t.txt", "\n\n".join(f"paragraph {i}" for i in range(40)))
    text_parts = split_source(digits_task(), text, 2, SplitSpec("iid"))
    paragraphs = [line.strip() for p in text_parts for line in p.text.split("\n\n")]  # type: ignore[union-attr]
    assert sorted(paragraphs) == sorted(text.text.split("\n\n"))
    with pytest.raises(ValueError, match="a text has no labels"):
        split_source(digits_task(), text, 2, SplitSpec("dirichlet", 1.0))


def test_cli_writes_one_file_per_client(tmp_path: Path) -> None:
    out = tmp_path / "clients"
    result = subprocess.run(
        [sys.executable, "-m", "py_cli", "split", "--task", "mnist", "--clients", "3", "--split", "dirichlet:0.5",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["client-0.zip", "client-1.zip", "client-2.zip"]
    counts = [int(line.split()[2]) for line in result.stdout.splitlines() if line.startswith("client")]
    assert sum(counts) == 5000
