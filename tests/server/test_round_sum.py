"""The server's numpy round sum against plain references: same checks as the shared decoder, same aggregate."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from py_shared.aggregation.accumulator import RoundAccumulator
from py_shared.protocol.messages import ProtocolError
from py_shared.protocol.vectors import checked_vector, magnitude_limit
from py_shared.task import TaskDefinition, task_from_json
from py_shared.weights import bytes_to_vector, vector_to_bytes
from server.federation.round_sum import RoundSum, checked_update
from tests.server.raw_client import tiny_task

SIZE = 1000


def task(**overrides: object) -> TaskDefinition:
    return task_from_json(tiny_task("sum", **overrides))


@pytest.mark.parametrize(
    "values",
    [
        [0.5, float("nan"), 1.0],
        [0.5, float("inf"), 1.0],
        [-float("inf")] * 3,
        [0.5, 3e38, 1.0],  # finite, but its square overflows: still too_large, not not_finite
        [0.5, -1e19, 1.0],
        [0.5, -1e17, 1.0],
        [1.0, 2.0, 3.0],
    ],
)
def test_the_checks_agree_with_the_shared_decoder(values: list[float]) -> None:
    payload = struct.pack(f"<{len(values)}f", *values)
    try:
        expected = checked_vector(payload, len(values), "CPU").tolist()
    except ProtocolError as e:
        with pytest.raises(ProtocolError) as caught:
            checked_update(payload, len(values))
        assert (caught.value.code, str(caught.value)) == (e.code, str(e))
    else:
        assert checked_update(payload, len(values))[0].tolist() == expected


def test_a_value_just_at_the_limit_is_refused_and_one_just_under_it_is_taken() -> None:
    limit = magnitude_limit(SIZE)
    below = np.zeros(SIZE, dtype=np.float32)
    below[7] = np.nextafter(np.float32(limit), np.float32(0))
    checked_update(below.tobytes(), SIZE)
    below[7] = limit
    with pytest.raises(ProtocolError, match="too large"):
        checked_update(below.tobytes(), SIZE)


def test_wrong_lengths_are_refused() -> None:
    with pytest.raises(ProtocolError) as caught:
        checked_update(bytes(4 * SIZE + 4), SIZE)
    assert caught.value.code == "wrong_length"


def test_fedavg_is_the_sample_weighted_mean() -> None:
    rng = np.random.default_rng(0)
    updates = [rng.normal(size=SIZE).astype(np.float32) for _ in range(5)]
    samples = [1, 10, 3, 7, 100]
    total = RoundSum(task(), SIZE)
    for u, n in zip(updates, samples, strict=True):
        total.add(u.tobytes(), n)
    expected = sum(u.astype(np.float64) * n for u, n in zip(updates, samples, strict=True)) / sum(samples)
    np.testing.assert_allclose(total.result(), expected, rtol=1e-5, atol=1e-6)


def test_a_refused_update_leaves_the_sum_as_it_was() -> None:
    total = RoundSum(task(), 3)
    total.add(struct.pack("<3f", 1, 2, 3), 1)
    with pytest.raises(ProtocolError):
        total.add(struct.pack("<3f", 1, float("nan"), 3), 1)
    assert total.result().tolist() == [1, 2, 3] and total.count == 1


def test_central_dp_clips_each_update_and_weighs_them_equally() -> None:
    privacy = {"central": True, "clip_norm": 1.0, "noise_multiplier": 0.0, "delta": 1e-5}
    total = RoundSum(task(privacy=privacy, min_participants=2), 2)
    total.add(struct.pack("<2f", 3, 4), 100)  # norm 5: clipped to (0.6, 0.8)
    total.add(struct.pack("<2f", 0.1, 0), 1)  # shorter than the clip norm: unchanged
    np.testing.assert_allclose(total.result(), [0.35, 0.4], rtol=1e-6)


@pytest.mark.parametrize("aggregator", ["median", "trimmed_mean", "krum", "centered_clipping"])
def test_robust_rules_give_what_the_shared_accumulator_gives(aggregator: str) -> None:
    definition = task(aggregator=aggregator)
    rng = np.random.default_rng(1)
    updates = [rng.normal(size=SIZE).astype(np.float32) for _ in range(6)]
    previous = rng.normal(size=SIZE).astype(np.float32)
    ours = RoundSum(definition, SIZE, previous)
    shared = RoundAccumulator(definition, SIZE, "CPU", bytes_to_vector(previous.tobytes(), "CPU").realize())
    for u in updates:
        ours.add(u.tobytes(), 5)
        shared.add(bytes_to_vector(u.tobytes(), "CPU").realize(), 5)
    assert ours.result().tobytes() == vector_to_bytes(shared.result())


def test_an_empty_round_has_no_aggregate() -> None:
    with pytest.raises(ValueError, match="no update"):
        RoundSum(task(), SIZE).result()
