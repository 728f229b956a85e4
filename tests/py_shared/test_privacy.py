"""Differential privacy: clipping, the noise's standard deviation (not its variance), the accountant's epsilon."""

from __future__ import annotations

import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant
from tinygrad import Tensor

from py_shared.privacy.accountant import ORDERS, RdpAccountant, rdp_subsampled_gaussian
from py_shared.privacy.gaussian import clip_to_norm, gaussian_noise, privatize


def test_clipping_bounds_the_norm_and_leaves_short_updates_alone() -> None:
    long = np.full(100, 3.0, dtype=np.float32)  # norm 30
    clipped = clip_to_norm(Tensor(long), 2.0).numpy()
    assert np.linalg.norm(clipped) == pytest.approx(2.0, rel=1e-5)
    np.testing.assert_allclose(clipped / np.linalg.norm(clipped), long / np.linalg.norm(long), rtol=1e-5)
    short = np.full(100, 0.01, dtype=np.float32)
    np.testing.assert_allclose(clip_to_norm(Tensor(short), 2.0).numpy(), short)


@pytest.mark.parametrize(("clip", "z"), [(1.0, 1.0), (0.5, 2.0), (4.0, 0.3)])
def test_noise_std_is_the_multiplier_times_the_clip_norm(clip: float, z: float) -> None:
    noised = privatize(Tensor.zeros(200_000), clip, z).numpy()
    assert abs(noised.std() / (z * clip) - 1) < 0.05  # DISCO's bug (std = (z*C)^2) would be off by far more
    assert abs(noised.mean()) < 0.05 * z * clip


def test_noise_is_fresh_on_every_draw() -> None:
    a, b = gaussian_noise(1000, 1.0).numpy(), gaussian_noise(1000, 1.0).numpy()
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.15
    assert 0.5 < abs(np.random.default_rng(0).normal(size=1000)).mean() / abs(a).mean() < 1.5


@pytest.mark.parametrize(("q", "sigma", "steps"), [(1.0, 1.0, 20), (0.01, 1.1, 10_000), (0.05, 0.8, 300)])
def test_epsilon_matches_googles_dp_accounting(q: float, sigma: float, steps: int) -> None:
    reference = rdp_privacy_accountant.RdpAccountant(orders=list(ORDERS))
    reference.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
    ours = RdpAccountant(delta=1e-5)
    for _ in range(4):
        ours.step(sigma, q, steps // 4)
    ours.step(sigma, q, steps - 4 * (steps // 4))
    assert ours.epsilon == pytest.approx(reference.get_epsilon(1e-5), rel=1e-6)


def test_full_participation_is_the_plain_gaussian_mechanism() -> None:
    assert rdp_subsampled_gaussian(1.0, 2.0, 8) == pytest.approx(8 / (2 * 4.0))
    assert rdp_subsampled_gaussian(0.0, 2.0, 8) == 0.0
    accountant = RdpAccountant(delta=1e-5)
    assert accountant.epsilon == 0.0
    accountant.step(1.0)
    first = accountant.epsilon
    accountant.step(1.0)
    assert math.isfinite(first) and accountant.epsilon > first
