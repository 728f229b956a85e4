"""Aggregation rules: pure functions from participants' updates (1-D float32 tinygrad Tensors) to one update.

FedAvg (McMahan et al. 2017) averages weighted by sample counts; the robust rules ignore counts on purpose, since
a Byzantine participant would lie about them: coordinate-wise median and trimmed mean (Yin et al. 2018),
centered clipping (Karimireddy, He and Jaggi 2021) and Krum / Multi-Krum (Blanchard et al. 2017).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tinygrad import Tensor


def _stacked(updates: Sequence[Tensor]) -> Tensor:
    if not updates:
        raise ValueError("there is no update to aggregate")
    sizes = {u.shape for u in updates}
    if len(sizes) != 1 or len(updates[0].shape) != 1:
        raise ValueError(f"updates must be 1-D vectors of one length, got shapes {sorted(sizes)}")
    return Tensor.stack(*updates)


def weighted_mean(updates: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """FedAvg: sum(w_i * u_i) / sum(w_i)."""
    if len(weights) != len(updates) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("one non-negative weight per update is needed, and they must not all be zero")
    total = float(sum(weights))
    scale = Tensor([w / total for w in weights], device=updates[0].device).reshape(-1, 1)
    return (_stacked(updates) * scale).sum(0)


def _median_of_rows(stacked: Tensor) -> Tensor:
    ordered, n = stacked.sort(dim=0)[0], int(stacked.shape[0])
    return ordered[(n - 1) // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def coordinate_median(updates: Sequence[Tensor]) -> Tensor:
    """The median of each coordinate (the mean of the two middle values for an even count)."""
    return _median_of_rows(_stacked(updates))


def trimmed_mean(updates: Sequence[Tensor], trim_fraction: float) -> Tensor:
    """Per coordinate, drop the floor(fraction * n) lowest and highest values and average the rest."""
    n = len(updates)
    k = math.floor(trim_fraction * n)
    if n - 2 * k < 1:
        raise ValueError(f"trimming {k} from each end of {n} updates leaves nothing")
    return _stacked(updates).sort(dim=0)[0][k : n - k].mean(0)


def centered_clipping(updates: Sequence[Tensor], center: Tensor, radius: float, iterations: int) -> Tensor:
    """Start from `center` and move it, `iterations` times, by the mean of the updates' offsets clipped to `radius`.

    radius <= 0 picks it adaptively: the median of the offsets' norms at each iteration, which the honest
    majority sets, so no scale has to be guessed per model."""
    stacked = _stacked(updates)
    v = center
    for _ in range(iterations):
        offsets = stacked - v.reshape(1, -1)
        norms = (offsets * offsets).sum(1, keepdim=True).sqrt()
        tau = radius if radius > 0 else _median_of_rows(norms)
        scale = (tau / norms.maximum(1e-12)).minimum(1.0)
        v = (v + (offsets * scale).mean(0)).realize()
    return v


def krum_scores(updates: Sequence[Tensor], byzantine: int) -> list[float]:
    """Each update's Krum score: the summed squared distances to its n - f - 2 nearest other updates."""
    n = len(updates)
    neighbours = n - byzantine - 2
    if neighbours < 1:
        raise ValueError(f"Krum needs more than f + 2 = {byzantine + 2} updates, got {n}")
    stacked = _stacked(updates)
    squares = (stacked * stacked).sum(1)
    gram = stacked @ stacked.T
    distances: list[list[float]] = (squares.reshape(-1, 1) + squares.reshape(1, -1) - 2 * gram).maximum(0).tolist()  # type: ignore[assignment]
    return [sum(sorted(row[j] for j in range(n) if j != i)[:neighbours]) for i, row in enumerate(distances)]


def multi_krum(updates: Sequence[Tensor], byzantine: int, select: int) -> Tensor:
    """The mean of the `select` updates with the lowest Krum scores (select=1: Krum itself)."""
    scores = krum_scores(updates, byzantine)
    chosen = sorted(range(len(updates)), key=lambda i: scores[i])[: max(1, min(select, len(updates)))]
    return _stacked([updates[i] for i in chosen]).mean(0)
