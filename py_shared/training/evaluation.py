"""How a model does on a labelled test set, class by class: its predicted class for every example, the
confusion matrix, the accuracy overall and per class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tinygrad import Tensor, TinyJit, Variable

from py_shared.models.base import Model
from py_shared.training.device_data import DeviceExamples


@dataclass(frozen=True)
class ClassReport:
    """`confusion[t][p]`: how many examples of class t the model called p."""

    names: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]

    @property
    def accuracy(self) -> float:
        total = sum(map(sum, self.confusion))
        return sum(self.confusion[i][i] for i in range(len(self.names))) / total if total else 0.0

    @property
    def per_class(self) -> tuple[float | None, ...]:
        """Each class's accuracy (recall); None for a class the test set lacks."""
        return tuple(row[i] / sum(row) if sum(row) else None for i, row in enumerate(self.confusion))


def predict(model: Model, data: DeviceExamples) -> list[int]:
    """The predicted class of every example, chunk by chunk (one compiled kernel for all chunks)."""

    @TinyJit
    def chunk(i: Any) -> Tensor:  # a bound Variable: the chunk's index
        x, _, _ = data.chunk_rows(i)
        return model(x).argmax(-1).realize()

    out: list[int] = []
    for k in range(data.chunks):
        out += _ints(chunk(Variable("chunk", 0, max(data.chunks - 1, 1)).bind(k)))
    return out[: data.count]


def _ints(t: Tensor) -> list[int]:
    return [int(v) for v in t.tolist()]  # type: ignore[union-attr]


def true_classes(data: DeviceExamples) -> list[int]:
    """The labels of the examples, in order."""
    return _ints(data.y[: data.count])


def class_report(true: Sequence[int], predicted: Sequence[int], names: Sequence[str]) -> ClassReport:
    """The confusion matrix of `predicted` against `true` over the classes `names`."""
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} labels but {len(predicted)} predictions")
    n = len(names)
    counts = [[0] * n for _ in range(n)]
    for t, p in zip(true, predicted, strict=True):
        counts[t][p] += 1
    return ClassReport(tuple(names), tuple(tuple(row) for row in counts))
