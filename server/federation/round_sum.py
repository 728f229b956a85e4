"""A round's plain updates checked and summed with numpy on the server, at memory speed.

The rules stay the pure tinygrad functions the peers share (py_shared.aggregation); what the server adds is the
hot path before them. Each update is checked with one BLAS dot product (NaN or an infinity makes it non-finite;
a value at or above the magnitude limit can only exist when the norm reaches it) and, for FedAvg and FedProx,
added into a float32 running sum in place: tinygrad would spend milliseconds scheduling each of these, and this
runs on the event loop once per update. Central DP clips with the same dot product and draws the round's noise
once. The robust rules need every update at once: they get tinygrad tensors and run py_shared's accumulator.
"""

from __future__ import annotations

import secrets

import numpy as np
import numpy.typing as npt

from py_shared.aggregation.accumulator import STREAMING, RoundAccumulator
from py_shared.protocol.vectors import magnitude_limit, not_finite, too_large, wrong_length
from py_shared.task import TaskDefinition
from py_shared.weights import bytes_to_vector, vector_to_bytes

Vector = npt.NDArray[np.float32]
DEVICE = "CPU"


def checked_update(payload: bytes, size: int) -> tuple[Vector, float]:
    """The payload as a float32 view and its squared norm, or ProtocolError (wrong_length, not_finite, too_large)."""
    if len(payload) != 4 * size:
        raise wrong_length(size, len(payload))
    values = np.frombuffer(payload, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow to Inf is a finding, below
        squared = float(np.dot(values, values))
    limit = magnitude_limit(size)
    if squared < limit * limit:  # every |x| <= norm < limit, and NaN or Inf would have made the dot non-finite
        return values, squared
    if not np.isfinite(values).all():
        raise not_finite()
    if float(np.abs(values).max()) >= limit:
        raise too_large(limit)
    return values, squared


class RoundSum:
    """One round's updates on their way to the aggregate update, kept in numpy between the rules."""

    def __init__(self, task: TaskDefinition, size: int, previous: Vector | None = None) -> None:
        self.task, self.size = task, size
        self.count, self.weight = 0, 0.0
        self.total = np.zeros(size, dtype=np.float32) if task.aggregator in STREAMING else None
        self.rule = None
        if self.total is None:  # last round's aggregate is where centered clipping starts from
            start = None if previous is None else bytes_to_vector(previous.tobytes(), DEVICE)
            self.rule = RoundAccumulator(task, size, DEVICE, start)

    def add(self, payload: bytes, samples: int) -> None:
        """Check one participant's update and take it in; ProtocolError leaves the sum as it was."""
        values, squared = checked_update(payload, self.size)
        if self.rule is not None:
            self.rule.add(bytes_to_vector(payload, DEVICE).realize(), samples)
        else:
            assert self.total is not None
            privacy = self.task.privacy
            factor = np.float32(samples)
            if privacy.central and privacy.clip_norm > 0:  # equal weights bound the sensitivity
                factor, samples = np.float32(min(1.0, privacy.clip_norm / max(squared**0.5, 1e-12))), 1
            self.total += values * factor
        self.count += 1
        self.weight += samples

    def result(self) -> Vector:
        """The aggregate update; raises ValueError when nothing was added."""
        if not self.count:
            raise ValueError("no update was received in this round")
        if self.rule is not None:
            return np.frombuffer(vector_to_bytes(self.rule.result()), dtype=np.float32).copy()
        assert self.total is not None
        aggregate = self.total / np.float32(self.weight)
        privacy = self.task.privacy
        if privacy.central and privacy.noise_multiplier > 0:
            std = privacy.noise_multiplier * privacy.clip_norm / self.count
            noise = np.random.default_rng(secrets.randbits(128)).normal(0.0, std, self.size)
            aggregate += noise.astype(np.float32)
        return aggregate
