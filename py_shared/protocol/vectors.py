"""Checking a received model vector before anything uses it: its length, that every value is finite, and that no
value is so large that the round's sums or norms could overflow float32."""

from __future__ import annotations

import functools
import math

from tinygrad import Tensor

from py_shared.protocol.messages import ProtocolError
from py_shared.weights import bytes_to_vector

FLOAT32_MAX = 3.4028234663852886e38

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


def magnitude_limit(size: int) -> float:
    """How large a value of an update of `size` values may be (exclusive): a power of 4 small enough that squared
    norms and distances of such updates (at most 4 * size * limit^2: centered clipping, Krum, DP clipping) stay
    finite in float32, and so does a round's sum weighted by sample counts (under 1e9 * limit per update, so
    more than 10^10 updates would be needed to overflow)."""
    top = math.floor((math.log2(FLOAT32_MAX / (4 * size)) / 2 + 127) / 2)
    return 2.0 ** (2 * top - 127)


@functools.cache
def _at_least(top: int) -> bytes:
    return bytes(1 if b & 0x7F >= top else 0 for b in range(256))


def all_smaller_than(payload: bytes, limit: float) -> bool:
    """Whether every finite little-endian float32 in `payload` has |x| < `limit`, a power of 4 from magnitude_limit.

    Byte 3 of a float32 holds its sign and the top 7 bits t of its exponent, and for k >= 1, |x| >= 2^(2k - 127)
    exactly when t >= k: one table lookup per value and one byte search, at C speed."""
    top = round((math.log2(limit) + 127) / 2)
    return 1 not in payload[3::4].translate(_at_least(top))


def wrong_length(size: int, payload_bytes: int) -> ProtocolError:
    """The refusal of an update of `payload_bytes` bytes for a model of `size` values."""
    return ProtocolError("wrong_length", f"this task's model has {size} values, the update has {payload_bytes // 4}")


def not_finite() -> ProtocolError:
    """The refusal of an update holding NaN or an infinity."""
    return ProtocolError("not_finite", "the update contains NaN or infinite values")


def too_large(limit: float) -> ProtocolError:
    """The refusal of an update holding a value of magnitude `limit` or more."""
    return ProtocolError(
        "too_large",
        f"the update holds values too large to aggregate: each must be smaller than {limit:.3g} in magnitude, "
        "so that the round's sums stay finite",
    )


def checked_vector(payload: bytes, size: int, device: str) -> Tensor:
    """The payload as a realized float32 vector on `device`, or ProtocolError (wrong_length, not_finite, too_large)."""
    check_vector_bytes(payload, size)
    return bytes_to_vector(payload, device).realize()


def check_vector_bytes(payload: bytes, size: int) -> None:
    """Raise ProtocolError (wrong_length, not_finite, too_large) unless `payload` is `size` float32 values fit to
    be summed."""
    if len(payload) != 4 * size:
        raise wrong_length(size, len(payload))
    if not all_finite_float32(payload):
        raise not_finite()
    if not all_smaller_than(payload, limit := magnitude_limit(size)):
        raise too_large(limit)
