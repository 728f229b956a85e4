"""Examples held on the host before they go to the device: packed bytes, a shape per example, one label each."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

ITEMSIZE = {"float32": 4, "uint8": 1, "int32": 4}


class DataError(ValueError):
    """The participant's data cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Examples:
    """N examples of `shape`, packed little-endian as `dtype` in `features`, with integer labels."""

    features: bytes
    dtype: Literal["float32", "uint8", "int32"]
    shape: tuple[int, ...]
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        expected = len(self.labels) * self.example_bytes
        if len(self.features) != expected:
            raise ValueError(
                f"{len(self.labels)} examples of {self.shape} need {expected} bytes, got {len(self.features)}"
            )

    @property
    def example_bytes(self) -> int:
        """Bytes per example."""
        size = ITEMSIZE[self.dtype]
        for d in self.shape:
            size *= d
        return size

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: list[int]) -> Examples:
        """The examples at `indices`, in that order."""
        n = self.example_bytes
        features = b"".join(self.features[i * n : (i + 1) * n] for i in indices)
        return Examples(features, self.dtype, self.shape, tuple(self.labels[i] for i in indices))


def split_indices(count: int, validation_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded shuffle of range(count) cut into (train, validation); validation gets round(fraction*count)."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    n_val = round(validation_fraction * count)
    if validation_fraction > 0 and count > 1:
        n_val = min(max(n_val, 1), count - 1)
    return order[n_val:], order[:n_val]
