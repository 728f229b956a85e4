"""One round's updates on their way to an aggregate: streamed into a running sum where the rule allows it.

FedAvg and FedProx keep only a running weighted sum (memory of one model, however many participants); the
robust rules need every update at once and buffer them. Central DP clips each update as it arrives and noises
the mean once, at the end.
"""

from __future__ import annotations

from tinygrad import Tensor

from py_shared.aggregation.rules import centered_clipping, coordinate_median, multi_krum, trimmed_mean
from py_shared.privacy.gaussian import clip_to_norm, gaussian_noise
from py_shared.task import TaskDefinition

STREAMING = ("fedavg", "fedprox")


class RoundAccumulator:
    """Collects one round's updates for `task` and turns them into the round's aggregate update."""

    def __init__(self, task: TaskDefinition, size: int, device: str, previous: Tensor | None = None) -> None:
        self.task, self.size, self.device = task, size, device
        self.previous = previous  # last round's aggregate: where centered clipping starts from
        self.count = 0
        self.weight = 0.0
        self.streaming = task.aggregator in STREAMING
        self.total = Tensor.zeros(size, device=device).contiguous().realize() if self.streaming else None
        self.buffered: list[Tensor] = []

    def add(self, update: Tensor, samples: int) -> None:
        """Take one participant's update (already checked: right length, finite)."""
        privacy = self.task.privacy
        if privacy.central and privacy.clip_norm > 0:
            update, samples = clip_to_norm(update, privacy.clip_norm), 1  # equal weights bound the sensitivity
        if self.total is not None:
            self.total.assign(self.total + update * float(samples)).realize()
        else:
            self.buffered.append(update.realize())
        self.count += 1
        self.weight += samples

    def result(self) -> Tensor:
        """The aggregate update; raises ValueError when nothing was added."""
        if not self.count:
            raise ValueError("no update was received in this round")
        f, kind = self.task.federation, self.task.aggregator
        if self.total is not None:
            aggregate = self.total / self.weight
        elif kind == "median":
            aggregate = coordinate_median(self.buffered)
        elif kind == "trimmed_mean":
            aggregate = trimmed_mean(self.buffered, f.trim_fraction)
        elif kind == "centered_clipping":
            center = self.previous if self.previous is not None else Tensor.zeros(self.size, device=self.device)
            aggregate = centered_clipping(self.buffered, center, f.clip_radius, f.clip_iterations)
        else:  # krum and multi_krum fall back to a plain mean when too few updates arrived to score them
            select = 1 if kind == "krum" else f.krum_select
            if self.count > f.byzantine + 2:
                aggregate = multi_krum(self.buffered, f.byzantine, select)
            else:
                aggregate = Tensor.stack(*self.buffered).mean(0)
        privacy = self.task.privacy
        if privacy.central and privacy.noise_multiplier > 0:
            std = privacy.noise_multiplier * privacy.clip_norm / self.count
            aggregate = aggregate + gaussian_noise(self.size, std, self.device)
        return aggregate.realize()
