"""The secure sum's client and server state machines against each other: exact sums, nothing learnt from what
the server receives, dropouts in every phase, and bad input from a participant."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest
from tinygrad import Tensor, dtypes

from py_shared.protocol.messages import ProtocolError
from py_shared.secure import fixed_point
from py_shared.secure.precision import fixed_point_for
from py_shared.secure.server import AttemptFailed
from tests.py_shared.secure.round_driver import PHASES, secure_sum


def uint32_inputs(n: int, size: int, seed: int = 0) -> tuple[list[Tensor], np.ndarray]:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**32, size=(n, size), dtype=np.uint64).astype(np.uint32)
    return [Tensor(v.tobytes()).bitcast(dtypes.uint32).contiguous() for v in values], values


def expected_sum(values: np.ndarray, clients: list[int]) -> np.ndarray:
    return values[clients].sum(axis=0, dtype=np.uint64).astype(np.uint32)  # mod 2^32


def as_numpy(vector: Tensor) -> np.ndarray:
    return np.frombuffer(fixed_point.to_bytes(vector), dtype=np.uint32)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_the_unmasked_sum_is_the_sum_of_the_encoded_updates_bit_for_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    updates = rng.normal(0, 0.05, size=(n, 2000)).astype(np.float32)
    samples = rng.integers(1, 100, size=n)
    codec = fixed_point_for(1.0, 100)
    weights = samples / samples.max()
    encoded = [fixed_point.encode(Tensor(u), codec, float(w)).realize() for u, w in zip(updates, weights, strict=True)]
    total, survivors = asyncio.run(secure_sum(encoded))
    assert survivors == list(range(n))
    reference = expected_sum(np.stack([as_numpy(e) for e in encoded]), survivors)
    assert np.array_equal(as_numpy(total), reference)
    # and decoded, the weighted mean is FedAvg's within the fixed-point bound
    mean = fixed_point.decode(total, codec).numpy() / weights.sum()
    fedavg = (updates * weights[:, None]).sum(0) / weights.sum()
    bound = codec.max_error(n) / weights.sum() + 1e-6 * np.abs(fedavg)
    assert np.all(np.abs(mean - fedavg) <= bound)


@pytest.mark.parametrize("phase", PHASES)
def test_a_dropout_in_any_phase_leaves_the_exact_sum_of_the_survivors(phase: str) -> None:
    inputs, values = uint32_inputs(5, 500)
    total, survivors = asyncio.run(secure_sum(inputs, drop={phase: {2}}))
    # before its masked input, client 2 is left out; after it, its input is in the sum
    assert survivors == ([0, 1, 2, 3, 4] if phase == "unmask" else [0, 1, 3, 4])
    assert np.array_equal(as_numpy(total), expected_sum(values, survivors))


def test_a_sparse_mask_graph_gives_the_same_sum_with_dropouts() -> None:
    inputs, values = uint32_inputs(10, 300)
    # threshold 3 of each 5-member group: two dropouts in one group are still tolerated
    total, survivors = asyncio.run(secure_sum(inputs, degree=4, fraction=0.6, drop={"mask": {3}, "unmask": {7}}))
    assert survivors == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert np.array_equal(as_numpy(total), expected_sum(values, survivors))


def test_below_the_threshold_the_attempt_fails_instead_of_waiting() -> None:
    inputs, _ = uint32_inputs(5, 100)  # threshold 4 of 5
    with pytest.raises(AttemptFailed, match="threshold"):
        asyncio.run(secure_sum(inputs, drop={"mask": {1, 2}}))


def test_what_the_server_receives_does_not_correlate_with_any_update() -> None:
    n, size = 4, 1_000_000  # |r| of unrelated vectors is ~ 1/sqrt(size): 0.01 is 10 deviations away
    rng = np.random.default_rng(7)
    updates = rng.normal(0, 0.1, size=(n, size)).astype(np.float32)
    codec = fixed_point_for(1.0, 100)
    encoded = [fixed_point.encode(Tensor(u), codec).realize() for u in updates]
    received: list[bytes] = []
    total, _ = asyncio.run(secure_sum(encoded, record=received))
    masked = [np.frombuffer(p, dtype=np.uint32) for p in received if len(p) == 4 * size]
    assert len(masked) == n
    for vector in masked:
        signed = vector.view(np.int32).astype(np.float64)
        for update in updates:
            assert abs(np.corrcoef(signed, update)[0, 1]) < 0.01
        # uniform over Z_2^32: chi-square of the top 8 bits over 256 buckets (255 degrees of freedom; 390 is
        # exceeded with probability ~1e-7 by uniform values, and by millions by anything un-masked)
        counts = np.bincount(vector >> 24, minlength=256)
        chi2 = ((counts - size / 256) ** 2 / (size / 256)).sum()
        assert chi2 < 390
    unmasked = fixed_point.decode(total, codec).numpy()
    assert np.corrcoef(unmasked, updates.sum(0))[0, 1] > 0.999


def test_malformed_input_is_refused_by_name_and_the_round_completes_without_it() -> None:
    inputs, values = uint32_inputs(5, 200)

    def truncate_masked_input(phase: str, client: int, payload: bytes) -> bytes:
        return payload[:-4] if phase == "mask" and client == 1 else payload

    errors: list[tuple[int, ProtocolError]] = []
    total, survivors = asyncio.run(secure_sum(inputs, tamper=truncate_masked_input, errors=errors))
    [(client, error)] = errors
    assert client == 1 and error.code == "wrong_length" and "masked input" in str(error)
    assert survivors == [0, 2, 3, 4]  # left out, its pair masks rebuilt from the others' shares
    assert np.array_equal(as_numpy(total), expected_sum(values, survivors))


def test_malformed_shares_leave_their_sender_out() -> None:
    inputs, values = uint32_inputs(5, 200)

    def garble_shares(phase: str, client: int, payload: bytes) -> bytes:
        return payload[:-8] if phase == "share" and client == 3 else payload

    errors: list[tuple[int, ProtocolError]] = []
    total, survivors = asyncio.run(secure_sum(inputs, tamper=garble_shares, errors=errors))
    assert [(c, e.code) for c, e in errors] == [(3, "wrong_length")]
    assert survivors == [0, 1, 2, 4]
    assert np.array_equal(as_numpy(total), expected_sum(values, survivors))


def test_a_wrong_share_is_found_and_left_out() -> None:
    inputs, values = uint32_inputs(5, 100)

    def corrupt_one_share(phase: str, client: int, payload: bytes) -> bytes:
        if phase != "unmask" or client != 0:
            return payload
        record = bytearray(payload)
        record[20] ^= 0xFF  # inside the first opened share
        return bytes(record)

    total, survivors = asyncio.run(secure_sum(inputs, tamper=corrupt_one_share))
    assert np.array_equal(as_numpy(total), expected_sum(values, survivors))


def test_random_subsets_of_dropouts_never_give_a_wrong_sum() -> None:
    rng = random.Random(3)
    inputs, values = uint32_inputs(7, 64)
    for _ in range(6):
        drop = {phase: {rng.randrange(7)} for phase in rng.sample(PHASES, 2)}
        try:
            total, survivors = asyncio.run(secure_sum(inputs, drop=drop))
        except AttemptFailed:
            continue  # too few left: redone, never a wrong result
        assert np.array_equal(as_numpy(total), expected_sum(values, survivors))
