"""CNN: same-padded convolutions with ReLU and max-pooling, flattened into fully connected layers.

Input (batch, channels, height, width). Parameters, in order: conv.i.weight (out, in, k, k), conv.i.bias (out,)
for each convolution, then dense.j.weight (out, in), dense.j.bias (out,) for each dense layer, the last one
giving the class logits.
"""

from __future__ import annotations

import itertools

from tinygrad import Tensor

from py_shared.models.base import Model, linear, uniform
from py_shared.task import ConvLayer


def _max_pool(x: Tensor, k: int) -> Tensor:
    pooled = x.max_pool2d((k, k))
    assert isinstance(pooled, Tensor)  # a pair only with return_indices=True
    return pooled


class CNN(Model):
    """(channels, height, width) images -> class logits."""

    def __init__(
        self, shape: tuple[int, int, int], conv: tuple[ConvLayer, ...], dense: tuple[int, ...], classes: int
    ) -> None:
        channels, height, width = shape
        self.conv: list[tuple[Tensor, Tensor, ConvLayer]] = []
        for layer in conv:
            fan_in = channels * layer.kernel * layer.kernel
            w = uniform((layer.channels, channels, layer.kernel, layer.kernel), fan_in)
            self.conv.append((w, uniform((layer.channels,), fan_in), layer))
            channels, height, width = layer.channels, height // layer.pool, width // layer.pool
        if height < 1 or width < 1:
            raise ValueError(f"the convolution stack pools {shape[1]}x{shape[2]} images down to nothing")
        sizes = [channels * height * width, *dense, classes]
        self.dense = [linear(a, b) for a, b in itertools.pairwise(sizes)]

    def __call__(self, x: Tensor) -> Tensor:
        for w, b, layer in self.conv:
            x = x.conv2d(w, b, padding=layer.kernel // 2).relu()
            if layer.pool > 1:
                x = _max_pool(x, layer.pool)
        x = x.flatten(1)
        for i, (w, b) in enumerate(self.dense):
            x = x.linear(w.T, b)
            if i < len(self.dense) - 1:
                x = x.relu()
        return x

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        conv = [(f"conv.{i}.{n}", t) for i, (w, b, _) in enumerate(self.conv) for n, t in (("weight", w), ("bias", b))]
        dense = [
            (f"dense.{i}.{n}", t)
            for i, wb in enumerate(self.dense)
            for n, t in zip(("weight", "bias"), wb, strict=True)
        ]
        return conv + dense
