"""The tasks the server offers: predefined definitions (tasks/definitions/*.json) and their example data."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from py_shared.task import TaskDefinition, task_from_json
from py_shared.typed_json import ValidationError

log = logging.getLogger("pydisco.tasks")


@dataclass(frozen=True)
class ExampleData:
    """A task's example data file and what its manifest says about it."""

    path: Path
    media_type: str
    summary: str
    source: str
    licence: str


@dataclass(frozen=True)
class Catalog:
    """Tasks by id (predefined, then created through the API), example data, and private tasks' join tokens."""

    tasks: dict[str, TaskDefinition]
    examples: dict[str, ExampleData]
    join_tokens: dict[str, str] = field(default_factory=dict)


def load_catalog(definitions: Path, examples: Path) -> Catalog:
    """Read and validate every definition; a broken one is logged and left out rather than stopping the server."""
    tasks: dict[str, TaskDefinition] = {}
    for path in sorted(definitions.glob("*.json")):
        try:
            task = task_from_json(json.loads(path.read_text()))
        except (ValueError, ValidationError) as e:
            log.error("skipping task definition %s: %s", path.name, e)
            continue
        tasks[task.id] = task
    found = {}
    for task_id in tasks:
        manifest = examples / task_id / "MANIFEST.json"
        if manifest.exists():
            info = json.loads(manifest.read_text())
            path = manifest.parent / info["file"]
            if path.is_file():
                found[task_id] = ExampleData(path, info["media_type"], info["summary"], info["source"], info["licence"])
    return Catalog(tasks, found)
