"""What a trained model needs beside its weights to be used elsewhere, kept in its safetensors file's metadata.

A model file alone does not say how to feed it: which columns in which order, how numbers were standardised,
what each output means. The metadata (string values, as safetensors requires) carries the task's whole
definition (features and their order, categories, label names, image size, tokenizer), the label names again
for a quick look, and for tabular data the statistics the numeric columns were standardised with.
"""

from __future__ import annotations

import json

from py_shared.data.tabular import NumericStats
from py_shared.task import ImageData, TabularData, TaskDefinition, task_to_json


def model_metadata(task: TaskDefinition, stats: NumericStats | None = None) -> dict[str, str]:
    """The metadata of `task`'s trained model; `stats`: the numeric columns' statistics it was trained with."""
    metadata = {"task": task.id, "task_json": json.dumps(task_to_json(task), sort_keys=True)}
    spec = task.data
    if isinstance(spec, TabularData):
        metadata["labels"] = json.dumps(list(spec.label_values))
        metadata["features"] = json.dumps(list(spec.feature_columns))
        if stats is not None:
            columns = list(spec.numeric_columns)
            metadata["numeric_stats"] = json.dumps(
                {"columns": columns, "mean": list(stats.mean), "std": list(stats.std), "standardised": spec.normalize}
            )
    elif isinstance(spec, ImageData):
        metadata["labels"] = json.dumps(list(spec.labels))
    return metadata
