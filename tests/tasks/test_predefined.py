"""The predefined tasks: valid definitions that say what they learn and where their data comes from, example
data in place after setup, and each one learning well beyond chance from a small part of its example data."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import replace
from typing import Any

import pytest

from py_cli.files import DEFINITIONS, EXAMPLES, example_data, read_source, read_task
from py_shared.data.sources import DataSource, ImageSource, TextSource
from py_shared.models import build_model
from py_shared.task import TaskDefinition
from py_shared.training.pipeline import prepare_data
from py_shared.training.trainer import Trainer

TASKS = ["titanic", "mnist", "fashion_mnist", "simple_face", "emoji", "shakespeare"]
# (examples kept, epochs, steps per epoch (0: all), the least validation accuracy / the most perplexity)
QUICK: dict[str, tuple[int, int, int, dict[str, float]]] = {
    "titanic": (0, 5, 0, {"accuracy": 0.72}),  # majority class: 0.62
    "mnist": (400, 6, 0, {"accuracy": 0.6}),  # chance: 0.1
    "fashion_mnist": (800, 6, 0, {"accuracy": 0.6}),  # chance: 0.1
    "simple_face": (0, 8, 0, {"accuracy": 0.8}),  # chance: 0.5
    "emoji": (500, 8, 0, {"accuracy": 0.3}),  # chance 0.11, majority class 0.2; measured 0.51
    "shakespeare": (300_000, 1, 60, {"perplexity": 25.0}),  # chance: 66 (uniform over the alphabet); measured 15.9
}


@pytest.mark.parametrize("task_id", TASKS)
def test_definition_is_valid_and_explains_itself(task_id: str) -> None:
    task = read_task(task_id)
    assert task.id == task_id
    description = task.description.lower()
    assert "data:" in description and "sample" in description and "example data:" in description
    assert "licen" in description  # licence or license
    manifest = json.loads((EXAMPLES / task_id / "MANIFEST.json").read_text())
    assert example_data(task).stat().st_size > 0 and manifest["source"] and manifest["licence"]


def test_every_definition_is_offered() -> None:
    assert sorted(p.stem for p in DEFINITIONS.glob("*.json")) == sorted(TASKS)


def _subset(source: DataSource, keep: int) -> DataSource:
    if not keep:
        return source
    if isinstance(source, ImageSource):
        return ImageSource(random.Random(0).sample(source.items, min(keep, len(source.items))))
    assert isinstance(source, TextSource)
    return replace(source, text=source.text[:keep])


def _quick(task: TaskDefinition, epochs: int, steps: int) -> TaskDefinition:
    return replace(task, training=replace(task.training, epochs=epochs, steps_per_epoch=steps))


@pytest.mark.parametrize("task_id", TASKS)
def test_learns_well_beyond_chance_from_part_of_its_example_data(task_id: str) -> None:
    keep, epochs, steps, bound = QUICK[task_id]
    task = _quick(read_task(task_id), epochs, steps)
    data = prepare_data(task, _subset(read_source(task, example_data(task)), keep))
    history: list[Any] = asyncio.run(Trainer(task, build_model(task), data.train, data.validation).fit())
    last = history[-1]
    if "accuracy" in bound:
        assert last.val_accuracy >= bound["accuracy"], f"{task_id}: {last}"
    else:
        assert last.val_perplexity <= bound["perplexity"], f"{task_id}: {last}"
