"""How finely a secure sum encodes values, and the bound that keeps its 32-bit sums from wrapping.

A sum of n encoded values reads back exactly, as a signed int32, as long as n * Q < 2^31, where
Q = floor(c * 2^f) is the largest encoded magnitude (c the clip range, f the fractional bits).
`fixed_point_for` picks the largest f that keeps this true for `max_participants` values; a task is validated
with it. Values are clipped to +-Q / 2^f (at most c, less by under 2^-f) and each is then off by at most
2^-(f+1) (rounding), so a decoded sum of n values is within n * 2^-(f+1) of the sum of the clipped inputs, plus
float32's own rounding of the result. No tinygrad here: the
task schema checks the bound before any device exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INT32_MAX = 2**31 - 1
MIN_FRACTION_BITS = 8


@dataclass(frozen=True)
class FixedPoint:
    """f fractional bits, and clip range c: what every participant of a secure sum encodes with."""

    fraction_bits: int
    clip_value: float

    @property
    def scale(self) -> float:
        """2^f: exact in float32, so scaling loses nothing."""
        return float(2**self.fraction_bits)

    @property
    def max_magnitude(self) -> int:
        """Q, the largest |encoded value|."""
        return math.floor(self.clip_value * self.scale)

    def max_error(self, count: int) -> float:
        """The bound on |decoded sum - sum of the clipped inputs| for `count` values (before float32 rounding)."""
        return count * 0.5 / self.scale


def fixed_point_for(clip_value: float, max_participants: int) -> FixedPoint:
    """The finest codec whose sum of `max_participants` values of magnitude <= clip_value cannot wrap.

    Raises ValueError when fewer than MIN_FRACTION_BITS fractional bits would remain."""
    if not clip_value > 0 or max_participants < 1:
        raise ValueError("clip_value must be positive and max_participants at least 1")
    bits = math.floor(math.log2(INT32_MAX / (max_participants * clip_value)))
    # the estimate ignores that Q is rounded down, and log2 can round at exact powers of two: settle it exactly
    while bits >= 0 and max_participants * math.floor(clip_value * 2**bits) > INT32_MAX:
        bits -= 1
    while max_participants * math.floor(clip_value * 2 ** (bits + 1)) <= INT32_MAX:
        bits += 1
    if bits < MIN_FRACTION_BITS:
        raise ValueError(
            f"with max_participants {max_participants}, a clip_value of {clip_value:g} leaves {bits} fractional "
            f"bits in 32-bit sums; a clip_value of at most {INT32_MAX / 2**MIN_FRACTION_BITS / max_participants:g} "
            f"keeps {MIN_FRACTION_BITS}"
        )
    return FixedPoint(bits, clip_value)
