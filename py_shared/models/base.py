"""What every model in the zoo offers: a forward pass and its parameters in a fixed, named order."""

from __future__ import annotations

import math

from tinygrad import Tensor


class Model:
    """A tinygrad model whose parameters are listed, in a fixed order, by `named_parameters()`."""

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        raise NotImplementedError

    def parameters(self) -> list[Tensor]:
        """The parameters in the documented order (the order of the flat weight vector)."""
        return [p for _, p in self.named_parameters()]


def uniform(shape: tuple[int, ...], fan_in: int) -> Tensor:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for linear and convolution layers."""
    bound = 1 / math.sqrt(fan_in)
    return Tensor.uniform(*shape, low=-bound, high=bound).contiguous()


def linear(fan_in: int, fan_out: int) -> tuple[Tensor, Tensor]:
    """Weight (fan_out, fan_in) and bias (fan_out,) of a fully connected layer."""
    return uniform((fan_out, fan_in), fan_in), uniform((fan_out,), fan_in)
