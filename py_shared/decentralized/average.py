"""The average of a round's models, or the change their secure sum makes: the same bits on every peer.

Peers average the same models in the same order (the server's RoundFinal), but on different devices: a browser's
WebGPU and a CLI's CPU may round a float32 multiply-add differently, and a mesh round is only a mesh round if
everyone ends it with one model. So the average is taken in plain Python: float64 products and sums, in order,
rounded once to float32 at the end. IEEE 754 doubles give the same result in CPython and in Pyodide's wasm, on
any little-endian host (the protocol's byte order).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence


def weighted_average(models: Sequence[tuple[bytes, int]]) -> bytes:
    """sum(samples_i * model_i) / sum(samples_i) over (float32 bytes, samples) pairs, as float32 bytes."""
    if not models:
        raise ValueError("no models to average")
    if sys.byteorder != "little":
        raise RuntimeError("float32 payloads are little-endian; this host is not")
    size = len(models[0][0])
    if any(len(payload) != size for payload, _ in models) or size % 4:
        raise ValueError("the models to average differ in length")
    total = sum(samples for _, samples in models)
    acc = [0.0] * (size // 4)
    for payload, samples in models:
        weight = samples / total
        acc = [a + weight * x for a, x in zip(acc, array("f", payload), strict=True)]
    return array("f", acc).tobytes()


def add_encoded_sum(start: bytes, total: bytes, factor: float) -> bytes:
    """start + factor * total as float32 bytes, where `total` holds int32 words (a secure sum of fixed-point
    encoded changes, two's complement): the same plain-Python float64 arithmetic as weighted_average."""
    if sys.byteorder != "little":
        raise RuntimeError("float32 payloads are little-endian; this host is not")
    if len(start) != len(total) or len(start) % 4:
        raise ValueError("the start model and the sum differ in length")
    return array("f", [s + factor * x for s, x in zip(array("f", start), array("i", total), strict=True)]).tobytes()
