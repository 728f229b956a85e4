"""The training loop: it learns, reports progress, runs round hooks, cancels, and keeps loaded weights."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import numpy as np
import pytest
from tinygrad import Tensor

from py_shared.data.examples import Examples
from py_shared.data.text import CharTokenizer, tokenize
from py_shared.models import build_model
from py_shared.task import Federation, GPTModel, MLPModel, TabularData, TaskDefinition, TextData, Training
from py_shared.training.device_data import DeviceExamples, DeviceTokens
from py_shared.training.trainer import CancelToken, Progress, RoundMetrics, Trainer, TrainingCancelled
from py_shared.weights import get_vector, set_vector, vector_size

TASK = TaskDefinition(
    id="xor",
    title="Quadrants",
    data=TabularData(feature_columns=("x", "y"), label_column="q", label_values=("0", "1")),
    model=MLPModel(hidden=(16,)),
    training=Training(epochs=6, batch_size=16, learning_rate=0.05, optimizer="adam"),
)


def quadrants(n: int, seed: int) -> Examples:
    """Points labelled by whether x*y > 0: not linearly separable, easy for a small MLP."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    labels = tuple(int(v) for v in (xy[:, 0] * xy[:, 1] > 0))
    return Examples(xy.tobytes(), "float32", (2,), labels)


def run(trainer: Trainer, cancel: CancelToken | None = None) -> list:  # type: ignore[type-arg]
    return asyncio.run(trainer.fit(cancel))


def test_learns_and_reports_progress() -> None:
    progress: list[Progress] = []
    trainer = Trainer(
        TASK,
        build_model(TASK),
        DeviceExamples(quadrants(320, 0)),
        DeviceExamples(quadrants(101, 1), chunk=16),
        on_progress=progress.append,
    )
    history = run(trainer)
    assert len(history) == 6 and trainer.steps_per_epoch == 20
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].val_accuracy is not None and history[-1].val_accuracy > 0.85
    assert {p.step for p in progress if p.epoch == 1} == {2, 4, 6, 8, 10, 12, 14, 16, 18, 20}


def test_evaluation_counts_every_example_once() -> None:
    val = quadrants(37, 2)  # 37 examples in chunks of 8: the last chunk is padded and masked
    model = build_model(TASK)
    trainer = Trainer(TASK, model, DeviceExamples(quadrants(64, 3)), DeviceExamples(val, chunk=8))
    loss, accuracy = trainer.evaluate(trainer.validation)  # type: ignore[arg-type]
    x = Tensor(np.frombuffer(val.features, dtype=np.float32).reshape(37, 2).copy())
    logits = model(x)
    y = Tensor(np.array(val.labels, dtype=np.int32))
    assert loss == pytest.approx(logits.sparse_categorical_crossentropy(y).item(), rel=1e-5)
    assert accuracy == pytest.approx((logits.argmax(-1) == y).float().mean().item())


def test_each_epoch_is_shuffled_differently_and_reproducibly() -> None:
    trainer = Trainer(TASK, build_model(TASK), DeviceExamples(quadrants(50, 0)))
    first, second = trainer._epoch_order(1), trainer._epoch_order(2)
    assert first is not None and second is not None
    assert sorted(first.tolist()) == list(range(50)) and first.tolist() != second.tolist()
    assert first.tolist() == trainer._epoch_order(1).tolist()  # type: ignore[union-attr]


@pytest.mark.parametrize(("unit", "duration", "rounds"), [("batches", 3, 2 * 6), ("epochs", 1, 2), ("epochs", 2, 1)])
def test_round_hook_runs_every_round(unit: str, duration: int, rounds: int) -> None:
    task = replace(TASK, training=replace(TASK.training, epochs=2, round_unit=unit, round_duration=duration))
    seen: list[int] = []

    async def round_end(number: int) -> None:
        seen.append(number)

    trainer = Trainer(task, build_model(task), DeviceExamples(quadrants(288, 0)), round_end=round_end)
    run(trainer)
    assert seen == list(range(1, rounds + 1))


@pytest.mark.parametrize(("unit", "duration", "rounds"), [("batches", 5, 2 * 4), ("epochs", 1, 2)])
def test_each_round_reports_the_validation_of_the_model_the_round_left(unit: str, duration: int, rounds: int) -> None:
    task = replace(TASK, training=replace(TASK.training, epochs=2, round_unit=unit, round_duration=duration))
    model = build_model(task)
    zeros = Tensor.zeros(vector_size(model)).contiguous().realize()

    async def round_end(number: int) -> None:
        set_vector(model, zeros)  # the round's model: every logit 0, so the loss is ln 2

    reported: list[RoundMetrics] = []
    trainer = Trainer(task, model, DeviceExamples(quadrants(320, 0)), DeviceExamples(quadrants(40, 1)),
                      round_end=round_end, on_round=reported.append)  # fmt: skip
    run(trainer)
    assert [r.round for r in reported] == list(range(1, rounds + 1))
    assert all(r.val_loss == pytest.approx(math.log(2), rel=1e-5) for r in reported)
    assert all(0 < r.train_loss < 1 and 0 <= r.train_accuracy <= 1 for r in reported)


def test_weights_loaded_in_a_round_hook_are_the_ones_training_continues_from() -> None:
    """Regression for the TinyJit trap: loading received weights must not leave the JIT on old buffers."""
    task = replace(TASK, training=replace(TASK.training, epochs=3, optimizer="sgd", learning_rate=1e-9, momentum=0))
    model = build_model(task)
    received = Tensor.full((vector_size(model),), 0.25).contiguous().realize()

    async def round_end(number: int) -> None:
        if number == 1:
            set_vector(model, received)

    run(Trainer(task, model, DeviceExamples(quadrants(64, 0)), round_end=round_end))
    assert np.allclose(get_vector(model).numpy(), 0.25, atol=1e-5)


def test_cancel_stops_at_the_next_step() -> None:
    cancel = CancelToken()

    def on_progress(p: Progress) -> None:
        if p.step >= 4:
            cancel.cancel()

    trainer = Trainer(TASK, build_model(TASK), DeviceExamples(quadrants(320, 0)), on_progress=on_progress)
    with pytest.raises(TrainingCancelled, match="epoch 1, step 5"):
        run(trainer, cancel)


def test_language_model_learns_a_repetitive_text() -> None:
    spec = TextData(tokenizer="char", context_length=8, alphabet="abcd")
    task = TaskDefinition(
        id="lm",
        title="LM",
        data=spec,
        model=GPTModel(layers=1, heads=2, embed=16),
        training=Training(epochs=4, batch_size=8, learning_rate=0.01),
    )
    stream = tokenize("abcd" * 400, CharTokenizer(spec.alphabet), "t.txt", spec.context_length)
    tokens = DeviceTokens(stream, spec.context_length)
    history = run(Trainer(task, build_model(task), tokens, tokens))
    first, last = history[0], history[-1]
    assert last.val_loss is not None and first.val_loss is not None and last.val_loss < first.val_loss
    assert last.val_perplexity is not None and last.val_perplexity < math.exp(first.val_loss)
    assert last.val_accuracy is not None and last.val_accuracy > 0.9  # "abcd" repeats: the next char is certain


def test_fedprox_pulls_the_weights_towards_the_anchor() -> None:
    def drift(aggregator: str, mu: float) -> float:
        task = replace(TASK, aggregator=aggregator, federation=Federation(proximal_mu=mu))
        task = replace(task, training=replace(task.training, epochs=2, optimizer="sgd", learning_rate=0.05))
        model = build_model(task)
        start = get_vector(model).numpy()
        trainer = Trainer(task, model, DeviceExamples(quadrants(320, 0)))
        assert bool(trainer.anchor) == (aggregator == "fedprox" and mu > 0)
        run(trainer)
        if trainer.anchor:  # regression: detach().contiguous() aliased the parameters, so the anchor moved too
            np.testing.assert_array_equal(np.concatenate([a.numpy().ravel() for a in trainer.anchor]), start)
        return float(np.linalg.norm(get_vector(model).numpy() - start))

    free, held = drift("fedavg", 0.0), drift("fedprox", 5.0)
    assert held < 0.5 * free
    assert drift("fedprox", 0.0) == pytest.approx(free, rel=1e-4)  # mu = 0 is FedAvg's local training


def test_the_fedprox_anchor_follows_the_received_global_model() -> None:
    task = replace(TASK, aggregator="fedprox", federation=Federation(proximal_mu=0.1))
    model = build_model(task)
    trainer = Trainer(task, model, DeviceExamples(quadrants(64, 0)))
    set_vector(model, Tensor.full((vector_size(model),), 0.5).contiguous().realize())
    trainer.reset_anchor()
    assert all(np.allclose(a.numpy(), 0.5) for a in trainer.anchor)
    run(trainer)  # training moves the weights, not the anchor
    assert all(np.allclose(a.numpy(), 0.5) for a in trainer.anchor)
    assert not np.allclose(get_vector(model).numpy(), 0.5)
