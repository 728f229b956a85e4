"""Fixed-point codec between float32 updates and integers mod 2^32, where masks cancel exactly.

A value x is clipped to [-c, c] and becomes round(x * 2^f), a signed integer stored in a uint32 (two's
complement); sums wrap mod 2^32 and read back as int32 (precision.py states when that is exact). All vector
work runs in tinygrad, on the training device.
"""

from __future__ import annotations

from tinygrad import Tensor, dtypes

from py_shared.secure.precision import FixedPoint


def encode(vector: Tensor, codec: FixedPoint, weight: float = 1.0) -> Tensor:
    """weight * vector as uint32 fixed-point values (weight in (0, 1]), each value clipped to the codec's range."""
    if not 0 < weight <= 1:
        raise ValueError(f"a weight must be in (0, 1], got {weight}")
    bound = codec.max_magnitude
    # clip in the scaled domain, to the integer bound itself: rounding then stays within half a unit
    scaled = (vector.float().clip(-codec.clip_value, codec.clip_value) * weight * codec.scale).clip(-bound, bound)
    return scaled.round().cast(dtypes.int32).bitcast(dtypes.uint32)


def decode(total: Tensor, codec: FixedPoint) -> Tensor:
    """A uint32 sum of encoded vectors back to float32 (the sum, not divided by anything)."""
    return total.bitcast(dtypes.int32).cast(dtypes.float32) / codec.scale


def add(a: Tensor, b: Tensor) -> Tensor:
    """a + b mod 2^32."""
    return (a + b).cast(dtypes.uint32)


def subtract(a: Tensor, b: Tensor) -> Tensor:
    """a - b mod 2^32."""
    return (a - b).cast(dtypes.uint32)


def words(data: bytes, device: str | None = None) -> Tensor:
    """Little-endian bytes (a mask, a masked vector) as a uint32 vector on `device`."""
    if len(data) % 4:
        raise ValueError(f"{len(data)} bytes are not a whole number of 32-bit words")
    return Tensor(data, device=device).bitcast(dtypes.uint32).contiguous()


def to_bytes(vector: Tensor) -> bytes:
    """A uint32 vector as little-endian bytes."""
    return bytes(vector.cast(dtypes.uint32).contiguous().data())


def zeros(size: int, device: str | None = None) -> Tensor:
    """An all-zero uint32 vector (a running sum's start)."""
    return Tensor.zeros(size, dtype=dtypes.uint32, device=device).contiguous()
