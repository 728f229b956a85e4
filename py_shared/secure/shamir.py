"""Shamir secret sharing (Shamir 1979) of short secrets over the prime field GF(2^521 - 1).

A secret of up to 64 bytes is the constant term of a random polynomial of degree t - 1; participant x holds the
polynomial's value at x. Any t shares rebuild the secret by Lagrange interpolation at 0; fewer reveal nothing.
Given more than t shares, reconstruction checks that all of them lie on one polynomial and names the shares
that do not, so a corrupted or forged share is detected instead of silently yielding a wrong secret.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping

PRIME = 2**521 - 1  # a Mersenne prime: any 64-byte secret is below it
SHARE_BYTES = 66  # a field element, big-endian
MAX_SECRET_BYTES = 64
RandomBytes = Callable[[int], bytes]


class ShareError(ValueError):
    """Shares that cannot rebuild a secret: too few, malformed, or not on one polynomial."""


def _field_element(random_bytes: RandomBytes) -> int:
    # 64 bits beyond the field's size make the bias of the reduction negligible (2^-64)
    return int.from_bytes(random_bytes(SHARE_BYTES + 8), "big") % PRIME


def split_secret(secret: bytes, threshold: int, xs: Iterable[int], random_bytes: RandomBytes) -> dict[int, bytes]:
    """Shares of `secret` for the evaluation points `xs` (distinct, 1 <= x < 2^32): any `threshold` rebuild it."""
    points = list(xs)
    if len(secret) > MAX_SECRET_BYTES:
        raise ValueError(f"a secret has at most {MAX_SECRET_BYTES} bytes, got {len(secret)}")
    if len(set(points)) != len(points) or any(not 1 <= x < 2**32 for x in points):
        raise ValueError("evaluation points must be distinct integers in [1, 2^32)")
    if not 1 <= threshold <= len(points):
        raise ValueError(f"a threshold of {threshold} needs between 1 and {len(points)} shares")
    coefficients = [int.from_bytes(secret, "big"), *(_field_element(random_bytes) for _ in range(threshold - 1))]
    return {x: _evaluate(coefficients, x).to_bytes(SHARE_BYTES, "big") for x in points}


def _evaluate(coefficients: list[int], x: int) -> int:
    value = 0
    for c in reversed(coefficients):
        value = (value * x + c) % PRIME
    return value


@functools.lru_cache(maxsize=65536)
def _inverse(d: int) -> int:
    # evaluation points are small integers, so the same few differences recur: invert each once
    return pow(d % PRIME, -1, PRIME)


def _newton(points: list[tuple[int, int]]) -> list[int]:
    """Divided-difference coefficients of the polynomial through `points`."""
    xs, cs = [x for x, _ in points], [y for _, y in points]
    for j in range(1, len(points)):
        for i in range(len(points) - 1, j - 1, -1):
            cs[i] = (cs[i] - cs[i - 1]) * _inverse(xs[i] - xs[i - j]) % PRIME
    return cs


def _newton_value(points: list[tuple[int, int]], cs: list[int], at: int) -> int:
    value = 0
    for i in range(len(cs) - 1, -1, -1):
        value = (value * (at - points[i][0]) + cs[i]) % PRIME
    return value


def combine_shares(shares: Mapping[int, bytes], threshold: int, length: int) -> bytes:
    """The `length`-byte secret behind `shares` (x -> share); raises ShareError if they are too few or disagree."""
    if len(shares) < threshold:
        raise ShareError(f"{len(shares)} shares cannot rebuild a secret that needs {threshold}")
    points: list[tuple[int, int]] = []
    for x, y in sorted(shares.items()):
        value = int.from_bytes(y, "big")
        if len(y) != SHARE_BYTES or value >= PRIME or not 1 <= x < 2**32:
            raise ShareError(f"the share of participant {x} is malformed")
        points.append((x, value))
    base, extra = points[:threshold], points[threshold:]
    cs = _newton(base)
    wrong = [x for x, y in extra if _newton_value(base, cs, x) != y]
    if wrong:
        raise ShareError(f"the shares disagree: those of participants {wrong} (or of {[x for x, _ in base]}) are wrong")
    secret = _newton_value(base, cs, 0)
    if secret >= 256**length:
        raise ShareError("the shares rebuild a value longer than the secret: some share is wrong")
    return secret.to_bytes(length, "big")
