"""The local training loop: TinyJit steps on device-resident data, metrics, progress, rounds, cancellation.

A training step and an evaluation chunk are each one captured TinyJit; the batch position is a bound
Variable and the epoch's shuffle is a device tensor, so no step uploads data. Loss and accuracy accumulate on
the device and are read back only when progress is reported.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tinygrad import Tensor, TinyJit, Variable, nn
from tinygrad.helpers import Context

from py_shared.models.base import Model
from py_shared.task import TaskDefinition, Training
from py_shared.training.device_data import DeviceExamples, DeviceTokens, int32_tensor


class TrainingCancelled(Exception):
    """Raised out of Trainer.fit when its CancelToken was cancelled."""


class CancelToken:
    """Set by the UI (or a signal handler); the trainer stops at the next step."""

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass(frozen=True)
class Progress:
    """Training so far in this epoch: mean loss and accuracy over the steps since the epoch began."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    accuracy: float


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch's training and validation figures (perplexity = exp(loss), for language models)."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float

    @property
    def val_perplexity(self) -> float | None:
        return math.exp(min(self.val_loss, 50.0)) if self.val_loss is not None else None


@dataclass(frozen=True)
class RoundMetrics:
    """The model after a round with the others: its validation figures, and the training figures of the
    epoch so far (the steps before the round)."""

    round: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None


ProgressCallback = Callable[[Progress], None]
EpochCallback = Callable[[EpochMetrics], None]
RoundCallback = Callable[[RoundMetrics], None]
RoundHook = Callable[[int], Awaitable[None]]


def _pair(t: Tensor) -> tuple[float, float]:
    """The two values of a 2-element device tensor (one readback)."""
    first, second = t.tolist()  # type: ignore[misc]
    return float(first), float(second)


def make_optimizer(training: Training, params: list[Tensor]) -> nn.optim.Optimizer:
    """The task's optimizer over `params`."""
    if training.optimizer == "sgd":
        return nn.optim.SGD(
            params, lr=training.learning_rate, momentum=training.momentum, weight_decay=training.weight_decay
        )
    weight_decay = training.weight_decay if training.optimizer == "adamw" else 0.0
    return nn.optim.AdamW(params, lr=training.learning_rate, weight_decay=weight_decay)


class Trainer:
    """Trains `model` on `train` and evaluates on `validation`, as the task's training spec says."""

    def __init__(
        self,
        task: TaskDefinition,
        model: Model,
        train: DeviceExamples | DeviceTokens,
        validation: DeviceExamples | DeviceTokens | None = None,
        on_progress: ProgressCallback | None = None,
        on_epoch: EpochCallback | None = None,
        round_end: RoundHook | None = None,
        reports_per_epoch: int = 10,
        on_round: RoundCallback | None = None,
    ) -> None:
        self.task, self.model, self.train, self.validation = task, model, train, validation
        self.spec = task.training
        self.on_progress, self.on_epoch, self.round_end = on_progress, on_epoch, round_end
        self.on_round = on_round
        self.optimizer = make_optimizer(self.spec, model.parameters())
        if isinstance(train, DeviceExamples):
            self.batch = min(self.spec.batch_size, train.count)
            full_pass = train.count // self.batch
        else:
            self.batch = self.spec.batch_size
            full_pass = max(1, (train.count - train.context - 1) // (self.batch * train.context))
        self.steps_per_epoch = min(full_pass, self.spec.steps_per_epoch or full_pass)
        self.report_every = max(1, self.steps_per_epoch // reports_per_epoch)
        # running sums of this epoch's loss and correct predictions, kept on the device
        self.sums = Tensor.zeros(2).contiguous().realize()
        self.eval_sums = Tensor.zeros(2).contiguous().realize()
        # FedProx: the proximal term pulls local weights towards the round's global model (the anchor)
        self.proximal_mu = task.federation.proximal_mu if task.aggregator == "fedprox" else 0.0
        self.anchor = [p.detach().clone().realize() for p in model.parameters()] if self.proximal_mu else []
        self._step = TinyJit(self._train_step)
        self._eval = TinyJit(self._eval_chunk)
        self.rounds_done = 0

    def _loss_and_correct(self, logits: Tensor, y: Tensor, weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Summed cross-entropy and correct predictions over all positions, each weighted by `weight`."""
        classes = logits.shape[-1]
        flat, target = logits.reshape(-1, classes), y.reshape(-1)
        losses = flat.sparse_categorical_crossentropy(target, reduction="none")
        hits = (flat.argmax(-1) == target).float()
        if weight is not None:
            per = weight.reshape(-1, 1).expand(*y.shape[:1], math.prod(y.shape[1:])).reshape(-1)
            losses, hits = losses * per, hits * per
        return losses.sum(), hits.sum()

    def _train_step(self, order: Tensor | None, i: Any) -> Tensor:
        with Context(TRAINING=1):
            if isinstance(self.train, DeviceExamples):
                assert order is not None
                x, y = self.train.rows(order[i * self.batch : (i + 1) * self.batch])
            else:
                x, y = self.train.random_windows(self.batch)
            self.optimizer.zero_grad()
            loss_sum, correct = self._loss_and_correct(self.model(x), y)
            positions = int(math.prod(y.shape))
            objective = loss_sum / positions
            if self.anchor:
                drift = sum(((p - a) ** 2).sum() for p, a in zip(self.model.parameters(), self.anchor, strict=True))
                objective = objective + self.proximal_mu / 2 * drift
            objective.backward()
            self.sums.assign(self.sums + Tensor.stack(loss_sum, correct) / positions)
            Tensor.realize(self.sums, *self.optimizer.schedule_step())
            return self.sums

    def reset_anchor(self) -> None:
        """Make the current weights (a just received global model) the FedProx anchor (no-op without FedProx)."""
        if not self.anchor:
            return
        for a, p in zip(self.anchor, self.model.parameters(), strict=True):
            a.assign(p.detach())
        Tensor.realize(*self.anchor)

    def _eval_chunk(self, data: Any, i: Any) -> Tensor:
        if isinstance(data, DeviceExamples):
            x, y, mask = data.chunk_rows(i)
        else:
            x, y, mask = data.chunk_windows(i)
        loss_sum, correct = self._loss_and_correct(self.model(x), y, mask)
        # the sums are state captured by the JIT, not an input: TinyJit copies inputs it writes to
        return self.eval_sums.assign(self.eval_sums + Tensor.stack(loss_sum, correct)).realize()

    def evaluate(self, data: DeviceExamples | DeviceTokens) -> tuple[float, float]:
        """(mean loss, accuracy) over every example (or every window position) of `data`."""
        self.eval_sums.assign(Tensor.zeros(2)).realize()
        # the captured JIT reads the validation buffers; any other data gets a fresh one
        evaluate = self._eval if data is self.validation else TinyJit(self._eval_chunk)
        for k in range(data.chunks):
            evaluate(data, Variable("chunk", 0, max(data.chunks - 1, 1)).bind(k))
        loss_sum, correct = _pair(self.eval_sums)
        positions = data.count if isinstance(data, DeviceExamples) else data.windows * data.context
        return loss_sum / positions, correct / positions

    def _epoch_order(self, epoch: int) -> Tensor | None:
        if not isinstance(self.train, DeviceExamples):
            return None
        order = list(range(self.train.count))
        random.Random(self.spec.seed * 1_000_003 + epoch).shuffle(order)
        return int32_tensor(order).realize()

    async def fit(self, cancel: CancelToken | None = None) -> list[EpochMetrics]:
        """Run every epoch; calls the progress, epoch and round hooks; raises TrainingCancelled if cancelled."""
        history = []
        for epoch in range(1, self.spec.epochs + 1):
            started = time.perf_counter()
            order = self._epoch_order(epoch)
            self.sums.assign(Tensor.zeros(2)).realize()
            for step in range(1, self.steps_per_epoch + 1):
                if cancel is not None and cancel.cancelled:
                    raise TrainingCancelled(f"training cancelled in epoch {epoch}, step {step}")
                i = Variable("step", 0, max(self.steps_per_epoch - 1, 1)).bind(step - 1)
                self._step(order, i)
                if step % self.report_every == 0 or step == self.steps_per_epoch:
                    loss, accuracy = (v / step for v in _pair(self.sums))
                    if self.on_progress:
                        self.on_progress(Progress(epoch, self.spec.epochs, step, self.steps_per_epoch, loss, accuracy))
                if self.spec.round_unit == "batches" and step % self.spec.round_duration == 0:
                    await self._round()
                    if self.on_round is not None:  # measured now: the next round may come within this epoch
                        loss, accuracy = (v / step for v in _pair(self.sums))
                        self._report_round(loss, accuracy, self._validate())
                await asyncio.sleep(0)  # let the UI (or the network) run between steps
            train_loss, train_accuracy = (v / self.steps_per_epoch for v in _pair(self.sums))
            rounded = self.spec.round_unit == "epochs" and epoch % self.spec.round_duration == 0
            if rounded:
                await self._round()
            val_loss, val_accuracy = self._validate()
            if rounded and self.on_round is not None:
                self._report_round(train_loss, train_accuracy, (val_loss, val_accuracy))
            seconds = time.perf_counter() - started
            metrics = EpochMetrics(epoch, train_loss, train_accuracy, val_loss, val_accuracy, seconds)
            history.append(metrics)
            if self.on_epoch:
                self.on_epoch(metrics)
        return history

    def _validate(self) -> tuple[float | None, float | None]:
        return self.evaluate(self.validation) if self.validation is not None else (None, None)

    def _report_round(self, loss: float, accuracy: float, validation: tuple[float | None, float | None]) -> None:
        assert self.on_round is not None
        self.on_round(RoundMetrics(self.rounds_done, loss, accuracy, *validation))

    async def _round(self) -> None:
        self.rounds_done += 1
        if self.round_end is not None:
            await self.round_end(self.rounds_done)
