"""Dividing one data set among N simulated clients: IID, label skew (Dirichlet(alpha) per class), or quantity
skew (Dirichlet(alpha) sizes). Seeded, every index given to exactly one client, every client given at least one.
DISCO's CLI gave every simulated user the same data; a federated simulation needs these instead.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Literal

from py_shared.data.sources import CsvSource, DataSource, ImageSource, TextSource
from py_shared.data.tabular import parse_csv, to_csv
from py_shared.task import ImageData, TabularData, TaskDefinition


@dataclass(frozen=True)
class SplitSpec:
    """How to split: 'iid', 'dirichlet:ALPHA' (label skew) or 'quantity:ALPHA' (size skew)."""

    kind: Literal["iid", "dirichlet", "quantity"]
    alpha: float = 0.0

    @staticmethod
    def parse(text: str) -> SplitSpec:
        """Read 'iid', 'dirichlet:0.3' or 'quantity:0.5' (a smaller alpha is more skewed)."""
        kind, _, alpha = text.partition(":")
        if kind == "iid" and not alpha:
            return SplitSpec("iid")
        if kind in ("dirichlet", "quantity"):
            try:
                value = float(alpha)
            except ValueError:
                value = -1.0
            if value > 0:
                return SplitSpec(kind, value)  # type: ignore[arg-type]
        raise ValueError(f"{text!r}: expected iid, dirichlet:ALPHA or quantity:ALPHA with ALPHA > 0")


def _dirichlet(rng: random.Random, alpha: float, k: int) -> list[float]:
    draws = [rng.gammavariate(alpha, 1.0) for _ in range(k)]
    total = sum(draws) or 1.0
    return [d / total for d in draws]


def _cut(indices: list[int], proportions: list[float]) -> list[list[int]]:
    """Consecutive pieces of `indices` sized by `proportions` (rounded so that sizes add up exactly)."""
    bounds, acc = [0], 0.0
    for p in proportions:
        acc += p
        bounds.append(round(acc * len(indices)))
    bounds[-1] = len(indices)
    return [indices[a:b] for a, b in itertools.pairwise(bounds)]


def client_indices(
    labels: list[int], clients: int, spec: SplitSpec, seed: int = 0, attempts: int = 100
) -> list[list[int]]:
    """Indices of `labels` for each of `clients` clients; redrawn until no client is empty."""
    if clients < 1:
        raise ValueError("at least one client is needed")
    if clients > len(labels):
        raise ValueError(f"{len(labels)} examples cannot give {clients} clients one each")
    rng = random.Random(seed)
    for _ in range(attempts):
        parts = _draw(labels, clients, spec, rng)
        if all(parts):
            return [sorted(p) for p in parts]
    raise ValueError(f"could not give every client an example with {spec}; try a larger alpha or fewer clients")


def _draw(labels: list[int], clients: int, spec: SplitSpec, rng: random.Random) -> list[list[int]]:
    order = list(range(len(labels)))
    rng.shuffle(order)
    if spec.kind == "iid":
        return [order[c::clients] for c in range(clients)]
    if spec.kind == "quantity":
        return _cut(order, _dirichlet(rng, spec.alpha, clients))
    parts: list[list[int]] = [[] for _ in range(clients)]
    for label in sorted(set(labels)):
        members = [i for i in order if labels[i] == label]
        for c, piece in enumerate(_cut(members, _dirichlet(rng, spec.alpha, clients))):
            parts[c].extend(piece)
    return parts


def _units(task: TaskDefinition, source: DataSource) -> list[int]:
    """One label per splittable unit of `source`: a row, an image, or a text's paragraph (all label 0)."""
    if isinstance(source, CsvSource) and isinstance(task.data, TabularData):
        return parse_csv(source.text, task.data, source.name).labels
    if isinstance(source, ImageSource) and isinstance(task.data, ImageData):
        index = {label: i for i, label in enumerate(task.data.labels)}
        return [index.get(label, -1) for _, label, _ in source.items]
    if isinstance(source, TextSource):
        return [0] * len(_paragraphs(source.text))
    raise ValueError(f"cannot split {type(source).__name__} data for a {task.data.kind} task")


def _paragraphs(text: str) -> list[str]:
    return [p for p in text.split("\n\n") if p.strip()]


def subsets(task: TaskDefinition, source: DataSource, parts: list[list[int]]) -> list[DataSource]:
    """One source per list of unit indices (rows, images or paragraphs), in the format of `source`."""
    if isinstance(source, CsvSource) and isinstance(task.data, TabularData):
        table = parse_csv(source.text, task.data, source.name)
        stem = source.name.rsplit(".", 1)[0]
        return [
            CsvSource(f"{stem}-{c}.csv", to_csv(table.header, [table.rows[i] for i in p])) for c, p in enumerate(parts)
        ]
    if isinstance(source, ImageSource):
        return [ImageSource([source.items[i] for i in p]) for p in parts]
    if isinstance(source, TextSource):
        paragraphs, stem = _paragraphs(source.text), source.name.rsplit(".", 1)[0]
        return [
            TextSource(f"{stem}-{c}.txt", "\n\n".join(paragraphs[i] for i in p) + "\n", source.bpe_files)
            for c, p in enumerate(parts)
        ]
    raise ValueError(f"cannot split {type(source).__name__} data for a {task.data.kind} task")


def split_source(
    task: TaskDefinition, source: DataSource, clients: int, spec: SplitSpec, seed: int = 0
) -> list[DataSource]:
    """One source per client. Rows and images are split by label as `spec` says; a text (which has no labels)
    is cut into paragraphs dealt out IID or with quantity skew."""
    if isinstance(source, TextSource) and spec.kind == "dirichlet":
        raise ValueError("a text has no labels to skew: split it iid or by quantity")
    return subsets(task, source, client_indices(_units(task, source), clients, spec, seed))


def hold_out(task: TaskDefinition, source: DataSource, fraction: float, seed: int = 0) -> tuple[DataSource, DataSource]:
    """(the rest, a random `fraction` of the units): a common test set for comparing simulated clients."""
    order = list(range(len(_units(task, source))))
    random.Random(seed).shuffle(order)
    cut = max(1, round(fraction * len(order)))
    rest, held = subsets(task, source, [sorted(order[cut:]), sorted(order[:cut])])
    return rest, held


def label_counts(task: TaskDefinition, source: DataSource) -> list[int]:
    """How many examples of each class a source holds (empty for text)."""
    if isinstance(source, CsvSource) and isinstance(task.data, TabularData):
        labels = parse_csv(source.text, task.data, source.name).labels
        return [labels.count(k) for k in range(len(task.data.label_values))]
    if isinstance(source, ImageSource) and isinstance(task.data, ImageData):
        names = [label for _, label, _ in source.items]
        return [names.count(label) for label in task.data.labels]
    return []
