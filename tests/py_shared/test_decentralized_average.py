"""weighted_average against numpy, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from py_shared.decentralized.average import weighted_average


def test_the_average_is_numpy_s_float64_weighted_mean_rounded_once() -> None:
    rng = np.random.default_rng(0)
    vectors = [rng.standard_normal(1000).astype(np.float32) for _ in range(4)]
    samples = [3, 5, 7, 2]
    got = np.frombuffer(weighted_average([(v.tobytes(), s) for v, s in zip(vectors, samples, strict=True)]), np.float32)
    weights = np.array(samples, dtype=np.float64) / sum(samples)
    expected = sum(w * v.astype(np.float64) for w, v in zip(weights, vectors, strict=True)).astype(np.float32)
    np.testing.assert_array_equal(got, expected)


def test_the_same_models_in_the_same_order_give_the_same_bits() -> None:
    rng = np.random.default_rng(1)
    models = [(rng.standard_normal(500).astype(np.float32).tobytes(), s) for s in (1, 2, 3)]
    assert weighted_average(models) == weighted_average(list(models))


def test_models_of_different_lengths_or_none_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        weighted_average([(bytes(8), 1), (bytes(12), 1)])
    with pytest.raises(ValueError, match="no models"):
        weighted_average([])
