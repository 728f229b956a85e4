"""MLP: fully connected layers with ReLU between them, for tabular data (or flattened images).

Parameters, in order: layers.0.weight (h0, inputs), layers.0.bias (h0,), ..., layers.N.weight (classes, hN-1),
layers.N.bias (classes,).
"""

from __future__ import annotations

import itertools

from tinygrad import Tensor

from py_shared.models.base import Model, linear


class MLP(Model):
    """inputs -> hidden... -> classes logits."""

    def __init__(self, inputs: int, hidden: tuple[int, ...], classes: int) -> None:
        sizes = [inputs, *hidden, classes]
        self.layers = [linear(a, b) for a, b in itertools.pairwise(sizes)]

    def __call__(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for i, (w, b) in enumerate(self.layers):
            x = x.linear(w.T, b)
            if i < len(self.layers) - 1:
                x = x.relu()
        return x

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        return [
            (f"layers.{i}.{n}", t)
            for i, wb in enumerate(self.layers)
            for n, t in zip(("weight", "bias"), wb, strict=True)
        ]
