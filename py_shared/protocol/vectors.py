"""Checking a received model vector before anything uses it: its length and that every value is finite."""

from __future__ import annotations

from tinygrad import Tensor

from py_shared.protocol.messages import ProtocolError
from py_shared.weights import bytes_to_vector

# A float32 is NaN or infinite exactly when its 8 exponent bits are all ones: in little-endian bytes, the low 7
# bits of byte 3 and the top bit of byte 2. Per-byte tables turn each condition into 0/1 bytes, and one
# big-integer AND tests every value at once, all at C speed (tinygrad would spend milliseconds scheduling it).
_HIGH = bytes(1 if b & 0x7F == 0x7F else 0 for b in range(256))
_LOW = bytes(1 if b & 0x80 else 0 for b in range(256))


def all_finite_float32(payload: bytes) -> bool:
    """Whether every little-endian float32 in `payload` is finite."""
    high = payload[3::4].translate(_HIGH)
    low = payload[2::4].translate(_LOW)
    return not int.from_bytes(high, "little") & int.from_bytes(low, "little")


def checked_vector(payload: bytes, size: int, device: str) -> Tensor:
    """The payload as a realized float32 vector on `device`, or ProtocolError (wrong_length, not_finite)."""
    if len(payload) != 4 * size:
        raise ProtocolError("wrong_length", f"this task's model has {size} values, the update has {len(payload) // 4}")
    if not all_finite_float32(payload):
        raise ProtocolError("not_finite", "the update contains NaN or infinite values")
    return bytes_to_vector(payload, device).realize()
