"""Shamir sharing over GF(2^521 - 1): any t shares rebuild, fewer reveal nothing, and bad shares are caught."""

from __future__ import annotations

import random
import re

import pytest

from py_shared.secure.shamir import PRIME, SHARE_BYTES, ShareError, combine_shares, split_secret


def _split(secret: bytes, threshold: int, n: int, seed: int = 0) -> dict[int, bytes]:
    return split_secret(secret, threshold, range(1, n + 1), random.Random(seed).randbytes)


def _lagrange_at(points: list[tuple[int, int]], at: int) -> int:
    """The value at `at` of the polynomial through `points`, by the textbook formula (independent of shamir.py)."""
    total = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num, den = num * (at - xj) % PRIME, den * (xi - xj) % PRIME
        total = (total + yi * num * pow(den, -1, PRIME)) % PRIME
    return total


@pytest.mark.parametrize(("threshold", "n"), [(2, 2), (2, 5), (3, 3), (3, 10), (7, 7), (7, 20)])
def test_any_threshold_of_the_shares_rebuild_the_secret(threshold: int, n: int) -> None:
    rng = random.Random(threshold * 100 + n)
    secret = rng.randbytes(32)
    shares = _split(secret, threshold, n, seed=n)
    assert sorted(shares) == list(range(1, n + 1)) and all(len(s) == SHARE_BYTES for s in shares.values())
    for _ in range(8):
        chosen = rng.sample(sorted(shares), rng.randint(threshold, n))
        assert combine_shares({x: shares[x] for x in chosen}, threshold, 32) == secret
    with pytest.raises(ShareError, match=f"{threshold - 1} shares cannot rebuild a secret that needs {threshold}"):
        combine_shares({x: shares[x] for x in rng.sample(sorted(shares), threshold - 1)}, threshold, 32)


@pytest.mark.parametrize("secret", [b"", b"\0", b"\0\0\x01", b"\xff" * 64, bytes(range(64))])
def test_secrets_of_every_length_and_leading_zeros_survive(secret: bytes) -> None:
    shares = split_secret(secret, 3, [5, 9, 2**32 - 1, 77], random.Random(1).randbytes)
    assert combine_shares({x: shares[x] for x in (2**32 - 1, 5, 77)}, 3, len(secret)) == secret
    assert combine_shares(shares, 3, len(secret)) == secret


def test_a_threshold_of_one_hands_out_the_secret() -> None:
    shares = _split(b"abc", 1, 3)
    assert set(shares.values()) == {int.from_bytes(b"abc", "big").to_bytes(SHARE_BYTES, "big")}


def _names(message: str, x: int) -> bool:
    return re.search(rf"\b{x}\b", message) is not None


@pytest.mark.parametrize("extra", [1, 3])
def test_a_modified_share_is_detected_and_named(extra: int) -> None:
    threshold, secret = 3, b"\x42" * 16
    shares = _split(secret, threshold, threshold + extra, seed=extra)
    for x in shares:
        for delta in (1, PRIME - 1, 2**400):
            forged = dict(shares)
            forged[x] = ((int.from_bytes(shares[x], "big") + delta) % PRIME).to_bytes(SHARE_BYTES, "big")
            with pytest.raises(ShareError, match="disagree") as e:
                combine_shares(forged, threshold, 16)
            assert _names(str(e.value), x), (x, str(e.value))


def test_malformed_shares_are_refused() -> None:
    shares = _split(b"key", 2, 4)
    for x, bad in [
        (2, shares[2][1:]),
        (2, shares[2] + b"\0"),
        (3, PRIME.to_bytes(SHARE_BYTES, "big")),
        (3, (2**528 - 1).to_bytes(SHARE_BYTES, "big")),
    ]:
        with pytest.raises(ShareError, match=f"the share of participant {x} is malformed"):
            combine_shares({**shares, x: bad}, 2, 3)
    for x in (0, 2**32):
        with pytest.raises(ShareError, match="malformed"):
            combine_shares({x: shares[1], 2: shares[2]}, 2, 3)


def test_a_secret_longer_than_asked_for_is_refused() -> None:
    shares = _split(b"\x01\x00", 2, 3)
    assert combine_shares(shares, 2, 2) == b"\x01\x00"
    with pytest.raises(ShareError, match="longer than the secret"):
        combine_shares(shares, 2, 1)


@pytest.mark.parametrize("threshold", [2, 3, 7])
def test_fewer_than_threshold_shares_fit_every_secret(threshold: int) -> None:
    """Information-theoretic hiding: t - 1 shares lie on a degree t - 1 polynomial through (0, s) for every s."""
    shares = _split(b"\x07", threshold, threshold + 2, seed=threshold)
    seen = [(x, int.from_bytes(shares[x], "big")) for x in range(1, threshold)]
    for candidate in range(256):
        # the one polynomial through (0, candidate) and the t - 1 seen shares, evaluated at a fresh point
        fresh = threshold + 5
        y = _lagrange_at([(0, candidate), *seen], fresh)
        forged = {x: y.to_bytes(SHARE_BYTES, "big") for x, y in [*seen, (fresh, y)]}
        assert combine_shares(forged, threshold, 1) == bytes([candidate])


def test_split_refuses_bad_arguments() -> None:
    draw = random.Random(0).randbytes
    for xs, threshold, words in [
        ([1, 2, 2], 2, "distinct"),
        ([0, 1, 2], 2, r"\[1, 2\^32\)"),
        ([1, 2**32], 2, r"\[1, 2\^32\)"),
        ([-1, 1], 1, "distinct"),
        ([1, 2, 3], 0, "between 1 and 3"),
        ([1, 2, 3], 4, "a threshold of 4 needs between 1 and 3 shares"),
        ([], 1, "between 1 and 0"),
    ]:
        with pytest.raises(ValueError, match=words):
            split_secret(b"s", threshold, xs, draw)
    with pytest.raises(ValueError, match="at most 64 bytes, got 65"):
        split_secret(bytes(65), 2, [1, 2], draw)


def test_output_is_a_function_of_the_random_bytes() -> None:
    a, b = _split(b"seed", 3, 6, seed=5), _split(b"seed", 3, 6, seed=5)
    assert a == b
    c = _split(b"seed", 3, 6, seed=6)
    assert all(a[x] != c[x] for x in a) and combine_shares(c, 3, 4) == b"seed"
    calls: list[int] = []

    def counted(length: int) -> bytes:
        calls.append(length)
        return bytes(length)

    # all-zero randomness: every coefficient but the secret is 0, so every share is the secret itself
    assert set(split_secret(b"\x09", 4, [1, 2, 3, 4], counted).values()) == {(9).to_bytes(SHARE_BYTES, "big")}
    assert calls == [SHARE_BYTES + 8] * 3
