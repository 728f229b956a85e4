"""The metadata a trained model's file carries: enough to feed the model and read its outputs elsewhere."""

from __future__ import annotations

import json

from py_shared.data.tabular import NumericStats
from py_shared.task import task_from_json
from py_shared.training.model_card import model_metadata
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
