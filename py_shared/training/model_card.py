"""What a trained model needs beside its weights to be used elsewhere, kept in its safetensors file's metadata.

A model file alone does not say how to feed it: which columns in which order, how numbers were standardised,
what each output means. The metadata (string values, as safetensors requires) carries the task's whole
definition (features and their order, categories, label names, image size, tokenizer), the label names again
for a quick look, and for tabular data the statistics the numeric columns were standardised with.
"""

from __future__ import annotations

import json

from py_shared.data.tabular import NumericStats
from py_shared.models import build_model
from py_shared.safetensors_file import load_safetensors, model_to_safetensors
from py_shared.task import ImageData, TabularData, TaskDefinition, task_from_json, task_to_json
from py_shared.typed_json import parse


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


def read_model_card(metadata: dict[str, str]) -> tuple[TaskDefinition, NumericStats | None]:
    """The task and the standardisation statistics a model file's metadata carries (model_metadata's inverse);
    ValueError when the metadata lacks them or does not describe a valid task."""
    if "task_json" not in metadata:
        raise ValueError("the model file does not say which task it was trained for (no task_json metadata)")
    try:
        task = task_from_json(parse(metadata["task_json"]))
        numeric = parse(metadata["numeric_stats"]) if "numeric_stats" in metadata else None
    except ValueError as e:
        raise ValueError(f"the model file's metadata is unreadable: {e}") from None
    if not isinstance(numeric, dict):
        return task, None
    mean, std = numeric.get("mean"), numeric.get("std")
    if not isinstance(mean, list) or not isinstance(std, list) or len(mean) != len(std):
        raise ValueError("the model file's numeric statistics are malformed")
    return task, NumericStats(tuple(float(m) for m in mean), tuple(float(s) for s in std))


def read_exported_pair(chosen: dict[str, bytes]) -> tuple[TaskDefinition, bytes]:
    """A model exported as a .safetensors file and its task's .json (file name -> contents), checked to fit each
    other: the task, and the model file with that task in its metadata. ValueError says what does not fit."""
    weights = [n for n in chosen if n.endswith(".safetensors")]
    definitions = [n for n in chosen if n.endswith(".json")]
    if len(weights) != 1 or len(definitions) != 1:
        raise ValueError("choose one .safetensors file and its task's .json file together")
    try:
        task = task_from_json(parse(chosen[definitions[0]]))
    except ValueError as e:
        raise ValueError(f"{definitions[0]}: not a task definition: {e}") from None
    model = build_model(task)
    try:
        metadata = load_safetensors(model, chosen[weights[0]])
    except ValueError as e:
        raise ValueError(f"{weights[0]} does not fit the task in {definitions[0]}: {e}") from None
    metadata.update(model_metadata(task))  # the task is the .json's, whatever the file said; its statistics stay
    return task, model_to_safetensors(model, metadata)
