"""Feature statistics agreed through a secure sum, so every participant normalises a tabular task alike.

Each participant sums, per numeric column of its training split, the count of present values, their sum and
their sum of squares; the secure sum of these moments gives the federation's means and variances, and nobody
sees another participant's moments. The moments can be large (a sum of squares over many rows), so each one is
encoded exactly as a fixed-point integer V = round(v * 2^16) split into six 16-bit limbs
V = l0 + l1 B + ... + l5 B^5 (B = 2^16, the top limb signed): a sum of up to 2^15 participants' limbs cannot
wrap in 32 bits, moments up to 2^64 fit, and the carries are resolved after unmasking, in Python integers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from py_shared.data.tabular import NumericStats, TableRows
from py_shared.task import TabularData

FRACTION_BITS = 16
LIMB_BITS = 16
LIMBS = 6
MOMENTS = 3  # count, sum, sum of squares
MAX_PARTICIPANTS = 2**15
Moments = tuple[float, float, float]


def local_moments(rows: TableRows, indices: Sequence[int], spec: TabularData) -> list[Moments]:
    """(count, sum, sum of squares) of each numeric column over the rows at `indices`, missing cells skipped."""
    positions = [spec.feature_columns.index(c) for c in spec.numeric_columns]
    out = []
    for p in positions:
        values = [float(v) for i in indices if (v := rows.features[i][p]) is not None]
        out.append((float(len(values)), math.fsum(values), math.fsum(v * v for v in values)))
    return out


def words_for(columns: int) -> int:
    """How many uint32 words the moments of `columns` numeric columns take."""
    return columns * MOMENTS * LIMBS


def encode_moments(moments: Sequence[Moments]) -> list[int]:
    """The moments as uint32 words (LIMBS each); raises ValueError for a value too large to encode."""
    words: list[int] = []
    for value in (v for m in moments for v in m):
        fixed = round(value * 2**FRACTION_BITS)
        if abs(fixed) >= 2 ** (LIMB_BITS * LIMBS - 1) // MAX_PARTICIPANTS:
            raise ValueError(f"a column's sum {value:g} is too large to agree on securely")
        for _ in range(LIMBS):
            words.append(fixed % 2**LIMB_BITS if len(words) % LIMBS < LIMBS - 1 else fixed % 2**32)
            fixed >>= LIMB_BITS
    return words


def decode_moments(words: Sequence[int]) -> list[Moments]:
    """The summed moments from the sum (mod 2^32) of encoded words."""
    if len(words) % (MOMENTS * LIMBS):
        raise ValueError(f"{len(words)} words are not whole columns of moments")
    values = []
    for k in range(0, len(words), LIMBS):
        top = words[k + LIMBS - 1]
        fixed = top - 2**32 if top >= 2**31 else top  # the signed top limb
        for limb in reversed(words[k : k + LIMBS - 1]):
            fixed = fixed * 2**LIMB_BITS + limb
        values.append(fixed / 2**FRACTION_BITS)
    return [(values[i], values[i + 1], values[i + 2]) for i in range(0, len(values), MOMENTS)]


def statistics_from(moments: Sequence[Moments]) -> NumericStats:
    """Means and standard deviations from summed moments (std 1 for a constant or empty column, as locally)."""
    means, stds = [], []
    for count, total, squares in moments:
        mean = total / count if count > 0 else 0.0
        var = max(squares / count - mean * mean, 0.0) if count > 0 else 0.0
        means.append(mean)
        stds.append(math.sqrt(var) if var > 1e-12 else 1.0)
    return NumericStats(tuple(means), tuple(stds))
