"""Who masks with whom: every pair (Bonawitz et al. 2017), or a sparse k-regular graph (Bell et al. 2020).

The sparse graph is a circulant over a random order: each participant is joined to the k/2 next and k/2
previous ones around a shuffled ring, so every participant has exactly k neighbours and the cost of masking,
sharing and unmasking grows with k (chosen ~ log n), not with n. The server draws the order; a participant only
ever learns its own neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def mask_graph(order: Sequence[int], degree: int) -> dict[int, frozenset[int]]:
    """Each index's neighbours: all others if degree is 0 or >= n - 1, else the circulant of even `degree`."""
    n = len(order)
    if degree <= 0 or degree >= n - 1:
        return {i: frozenset(order) - {i} for i in order}
    if degree % 2:
        raise ValueError(f"a sparse mask graph needs an even degree, got {degree}")
    half = degree // 2
    return {order[p]: frozenset(order[(p + s) % n] for s in range(-half, half + 1) if s) for p in range(n)}


def threshold(fraction: float, degree: int) -> int:
    """Shares needed to rebuild a secret held by a participant and its `degree` neighbours (at least 2)."""
    return max(2, math.ceil(fraction * (degree + 1) - 1e-9))


def suggested_degree(participants: int) -> int:
    """An even degree ~ 2 log2(n), past which a random-graph mask leaves the sum as private as a complete one
    (Bell et al. 2020, Theorem 2 gives O(log n))."""
    return 2 * math.ceil(math.log2(max(participants, 2)))
