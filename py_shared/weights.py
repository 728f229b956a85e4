"""A model's parameters as one flat float32 vector (a 1-D Tensor) and as bytes, in the model's fixed order.

Received weights go into the existing parameter buffers with `assign`: swapping buffers (as load_state_dict
does) would leave an already captured TinyJit computing with the old ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tinygrad import Tensor, dtypes

from py_shared.models.base import Model


@dataclass(frozen=True)
class Slot:
    """Where one parameter sits in the flat vector."""

    name: str
    shape: tuple[int, ...]
    offset: int
    size: int


def layout(model: Model) -> list[Slot]:
    """Each parameter's name, shape and [offset, offset+size) range in the flat vector."""
    slots, offset = [], 0
    for name, p in model.named_parameters():
        shape = tuple(int(d) for d in p.shape)
        size = math.prod(shape)
        slots.append(Slot(name, shape, offset, size))
        offset += size
    return slots


def vector_size(model: Model) -> int:
    """Number of float32 values in the model's flat vector."""
    return sum(s.size for s in layout(model))


def get_vector(model: Model) -> Tensor:
    """The parameters concatenated, on the model's device (not yet realized)."""
    return Tensor.cat(*[p.flatten() for p in model.parameters()]).cast(dtypes.float32)


def set_vector(model: Model, vector: Tensor) -> None:
    """Write a flat vector into the parameters in place (TinyJit-safe), then realize them."""
    total = vector_size(model)
    if vector.shape != (total,):
        raise ValueError(f"the model has {total} parameters, the vector has shape {vector.shape}")
    params = model.parameters()
    for slot, p in zip(layout(model), params, strict=True):
        p.assign(vector[slot.offset : slot.offset + slot.size].reshape(slot.shape).cast(p.dtype))
    Tensor.realize(*params)


def vector_to_bytes(vector: Tensor) -> bytes:
    """Little-endian float32 bytes of a 1-D vector."""
    return bytes(vector.cast(dtypes.float32).contiguous().data())


def bytes_to_vector(data: bytes, device: str | tuple[str, ...] | None = None) -> Tensor:
    """A 1-D float32 vector from little-endian float32 bytes."""
    if len(data) % 4:
        raise ValueError(f"{len(data)} bytes is not a whole number of float32 values")
    return Tensor(data, device=device).bitcast(dtypes.float32).contiguous()


def model_to_bytes(model: Model) -> bytes:
    """The model's flat vector as bytes."""
    return vector_to_bytes(get_vector(model))


def load_bytes(model: Model, data: bytes) -> None:
    """Load a flat vector's bytes into the model, checking the length first."""
    expected = vector_size(model) * 4
    if len(data) != expected:
        raise ValueError(f"expected {expected // 4} float32 values ({expected} bytes), got {len(data)} bytes")
    set_vector(model, bytes_to_vector(data, model.parameters()[0].device))
