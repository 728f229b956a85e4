"""The metadata a trained model's file carries: enough to feed the model and read its outputs elsewhere."""

from __future__ import annotations

import json

import pytest

from py_shared.data.tabular import NumericStats
from py_shared.models import build_model
from py_shared.safetensors_file import decode, model_to_safetensors
from py_shared.task import task_from_json, task_to_json
from py_shared.training.model_card import model_metadata, read_exported_pair, read_model_card
from tests.fixtures import digits_task, titanic_like_task


def test_a_tabular_model_carries_its_task_feature_order_labels_and_standardisation() -> None:
    task = titanic_like_task()
    columns = list(task.data.numeric_columns)  # type: ignore[union-attr]
    stats = NumericStats(mean=tuple(range(len(columns))), std=(2.5,) * len(columns))
    metadata = model_metadata(task, stats)
    assert all(isinstance(v, str) for v in metadata.values())  # safetensors metadata is str -> str
    assert task_from_json(json.loads(metadata["task_json"])) == task
    assert json.loads(metadata["features"]) == list(task.data.feature_columns)  # type: ignore[union-attr]
    assert json.loads(metadata["labels"]) == list(task.data.label_values)  # type: ignore[union-attr]
    numeric = json.loads(metadata["numeric_stats"])
    assert numeric == {"columns": columns, "mean": list(stats.mean), "std": list(stats.std), "standardised": True}


def test_an_image_model_carries_its_label_names() -> None:
    task = digits_task()
    metadata = model_metadata(task)
    assert json.loads(metadata["labels"]) == list(task.data.labels)  # type: ignore[union-attr]
    assert metadata["task"] == task.id and "numeric_stats" not in metadata


def test_the_task_and_statistics_are_read_back_from_the_metadata() -> None:
    task = titanic_like_task()
    stats = NumericStats(mean=(1.0, 2.0, 3.0, 4.0), std=(0.5, 1.5, 2.5, 3.5))
    assert read_model_card(model_metadata(task, stats)) == (task, stats)
    assert read_model_card(model_metadata(digits_task())) == (digits_task(), None)


def test_metadata_without_a_task_or_with_a_broken_one_is_refused() -> None:
    with pytest.raises(ValueError, match="which task"):
        read_model_card({})
    with pytest.raises(ValueError, match="unreadable"):
        read_model_card({"task_json": "{not json"})
    broken = {**model_metadata(titanic_like_task()), "numeric_stats": '{"mean": [1], "std": []}'}
    with pytest.raises(ValueError, match="malformed"):
        read_model_card(broken)


def test_an_exported_pair_is_read_back_and_a_mismatched_one_is_refused() -> None:
    task = titanic_like_task()
    model = build_model(task)
    stats = NumericStats(mean=(1.0, 2.0, 3.0, 4.0), std=(0.5, 1.5, 2.5, 3.5))
    weights = model_to_safetensors(model, model_metadata(task, stats))
    definition = json.dumps(task_to_json(task)).encode()
    read_task, blob = read_exported_pair({"m.safetensors": weights, "m.json": definition})
    assert read_task == task
    _, metadata = decode(blob)
    assert read_model_card(metadata) == (task, stats)
    assert blob == weights  # the same weights and metadata
    with pytest.raises(ValueError, match="together"):
        read_exported_pair({"m.safetensors": weights})
    other = json.dumps(task_to_json(digits_task())).encode()
    with pytest.raises(ValueError, match="does not fit"):
        read_exported_pair({"m.safetensors": weights, "d.json": other})
    with pytest.raises(ValueError, match="not a task definition"):
        read_exported_pair({"m.safetensors": weights, "m.json": b"{"})
