"""The task API: the predefined tasks, each definition, and the example data a browser user trains on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from py_shared.task import task_from_json
from tests.conftest import ROOT
from tests.server.conftest import fetch

TASKS = {"titanic", "mnist", "fashion_mnist", "simple_face", "emoji", "shakespeare"}


def test_lists_every_predefined_task_with_its_example_data(server: tuple[str, Path]) -> None:
    status, headers, body = fetch(server[0] + "/api/tasks")
    assert status == 200 and headers["content-type"] == "application/json"
    listing = {t["id"]: t for t in json.loads(body)["tasks"]}
    assert set(listing) == TASKS
    for task_id, info in listing.items():
        example = info["example_data"]
        assert example is not None, task_id
        assert example["bytes"] > 0 and example["source"] and example["licence"]


def test_each_definition_is_valid_json_of_the_schema(server: tuple[str, Path]) -> None:
    for task_id in TASKS:
        status, _, body = fetch(f"{server[0]}/api/tasks/{task_id}")
        assert status == 200
        assert task_from_json(json.loads(body)).id == task_id


def test_example_data_is_the_prepared_file(server: tuple[str, Path]) -> None:
    for task_id, media_type in [("titanic", "text/csv"), ("mnist", "application/zip"), ("shakespeare", "text/plain")]:
        status, headers, body = fetch(f"{server[0]}/api/tasks/{task_id}/example-data")
        manifest = json.loads((ROOT / "tasks" / "examples" / task_id / "MANIFEST.json").read_text())
        on_disk = (ROOT / "tasks" / "examples" / task_id / manifest["file"]).read_bytes()
        assert status == 200 and headers["content-type"].split(";")[0] == media_type
        assert hashlib.sha256(body).digest() == hashlib.sha256(on_disk).digest()
        assert manifest["file"] in headers["content-disposition"]


def test_unknown_tasks_and_endpoints_get_a_clear_json_404(server: tuple[str, Path]) -> None:
    for path, message in [
        ("/api/tasks/nope", "no task 'nope'"),
        ("/api/tasks/nope/example-data", "no task 'nope'"),
        ("/api/tasks/..%2F..%2Fpyproject.toml/example-data", "no API endpoint"),
        ("/api/nothing-here", "no API endpoint /api/nothing-here"),
    ]:
        status, headers, body = fetch(server[0] + path)
        assert status == 404 and headers["content-type"] == "application/json", path
        assert message in json.loads(body)["error"], path
