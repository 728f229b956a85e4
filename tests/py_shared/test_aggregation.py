"""Aggregation rules against numpy references, and the round accumulator's streaming against buffering."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tinygrad import Tensor

from py_shared.aggregation.accumulator import RoundAccumulator
from py_shared.aggregation.rules import (
    centered_clipping,
    coordinate_median,
    krum_scores,
    multi_krum,
    trimmed_mean,
    weighted_mean,
)
from py_shared.task import Federation, Privacy
from tests.py_shared.test_models import MLP_TASK

RNG = np.random.default_rng(7)


def updates(n: int, d: int = 33) -> np.ndarray:
    return RNG.normal(size=(n, d)).astype(np.float32)


def tensors(x: np.ndarray) -> list[Tensor]:
    return [Tensor(row) for row in x]


def test_weighted_mean_is_fedavg() -> None:
    x, w = updates(5), [1.0, 4.0, 2.0, 0.0, 3.0]
    np.testing.assert_allclose(weighted_mean(tensors(x), w).numpy(), np.average(x, 0, weights=w), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        weighted_mean(tensors(x), [0.0] * 5)


@pytest.mark.parametrize("n", [1, 4, 7])
def test_coordinate_median(n: int) -> None:
    x = updates(n)
    np.testing.assert_allclose(coordinate_median(tensors(x)).numpy(), np.median(x, 0), rtol=1e-6)


@pytest.mark.parametrize(("n", "fraction"), [(5, 0.2), (8, 0.25), (4, 0.0)])
def test_trimmed_mean(n: int, fraction: float) -> None:
    x = updates(n)
    k = int(fraction * n)
    reference = np.sort(x, 0)[k : n - k].mean(0)
    np.testing.assert_allclose(trimmed_mean(tensors(x), fraction).numpy(), reference, rtol=1e-5, atol=1e-6)


def _centered_clipping_reference(x: np.ndarray, center: np.ndarray, tau: float, iterations: int) -> np.ndarray:
    v = center.astype(np.float64)
    for _ in range(iterations):
        offsets = x - v
        norms = np.linalg.norm(offsets, axis=1, keepdims=True)
        radius = tau if tau > 0 else np.median(norms)
        v = v + (offsets * np.minimum(1, radius / norms)).mean(0)
    return v


@pytest.mark.parametrize(("n", "tau"), [(6, 1.5), (6, 0.0), (7, 0.0)])
def test_centered_clipping(n: int, tau: float) -> None:
    x, center = updates(n), RNG.normal(size=33).astype(np.float32)
    x[0] *= 100  # an outlier, which the clipping bounds
    got = centered_clipping(tensors(x), Tensor(center), tau, 3).numpy()
    np.testing.assert_allclose(got, _centered_clipping_reference(x, center, tau, 3), rtol=1e-4, atol=1e-5)


def test_krum_scores_and_selection() -> None:
    x = updates(7)
    x[5] += 50  # far from everyone
    n, f = 7, 2
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    reference = [np.sort(np.delete(d[i], i))[: n - f - 2].sum() for i in range(n)]
    np.testing.assert_allclose(krum_scores(tensors(x), f), reference, rtol=1e-3)
    best = np.argsort(reference)[:3]
    np.testing.assert_allclose(multi_krum(tensors(x), f, 3).numpy(), x[best].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(multi_krum(tensors(x), f, 1).numpy(), x[best[0]], rtol=1e-6)
    with pytest.raises(ValueError, match="Krum needs"):
        krum_scores(tensors(x[:3]), 1)


def test_updates_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        coordinate_median([Tensor.zeros(3), Tensor.zeros(4)])


def test_streaming_fedavg_matches_the_buffered_rule_in_one_model_of_memory() -> None:
    x, w = updates(6), [3, 1, 4, 1, 5, 9]
    accumulator = RoundAccumulator(MLP_TASK, 33, "CPU")
    for row, samples in zip(x, w, strict=True):
        accumulator.add(Tensor(row), samples)
    assert accumulator.streaming and accumulator.buffered == []  # nothing kept per participant
    np.testing.assert_allclose(accumulator.result().numpy(), np.average(x, 0, weights=w), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["median", "trimmed_mean", "centered_clipping", "krum", "multi_krum"])
def test_the_accumulator_applies_the_task_rule(kind: str) -> None:
    x = updates(6)
    task = replace(MLP_TASK, aggregator=kind, federation=Federation(byzantine=1, krum_select=2))
    accumulator = RoundAccumulator(task, 33, "CPU")
    for row in x:
        accumulator.add(Tensor(row), 10)
    expected = {
        "median": lambda: coordinate_median(tensors(x)),
        "trimmed_mean": lambda: trimmed_mean(tensors(x), 0.2),
        "centered_clipping": lambda: centered_clipping(tensors(x), Tensor.zeros(33), 0.0, 3),
        "krum": lambda: multi_krum(tensors(x), 1, 1),
        "multi_krum": lambda: multi_krum(tensors(x), 1, 2),
    }[kind]().numpy()
    np.testing.assert_allclose(accumulator.result().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_central_dp_clips_each_update_and_noises_the_mean() -> None:
    d, n, clip, z = 20_000, 4, 0.5, 2.0
    task = replace(MLP_TASK, privacy=Privacy(clip_norm=clip, noise_multiplier=z, central=True))
    accumulator = RoundAccumulator(task, d, "CPU")
    for _ in range(n):
        accumulator.add(Tensor.full((d,), 1.0), samples=1000)  # norm sqrt(d), clipped to 0.5
    result = accumulator.result().numpy()
    mean = clip / np.sqrt(d)
    assert abs(result.mean() - mean) < 0.01
    assert abs(result.std() / (z * clip / n) - 1) < 0.05
