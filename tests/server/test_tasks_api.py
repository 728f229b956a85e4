"""The task API: the predefined tasks, each definition, and the example data a browser user trains on."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import struct
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from py_shared.models import build_model
from py_shared.protocol.messages import Join, decode_message, encode_message
from py_shared.safetensors_file import flat_to_safetensors, safetensors_to_flat
from py_shared.task import task_from_json
from py_shared.weights import layout
from tests.conftest import ROOT
from tests.server.conftest import fetch
from tests.server.raw_client import post_task, tiny_task

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


def post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(f"{url}/api/tasks", body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.load(r).get("error", "")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())["error"]


TABULAR = {"kind": "tabular", "feature_columns": ["a"], "label_column": "y", "label_values": ["0", "1"]}


def task_with(**changes: object) -> dict[str, object]:
    task: dict[str, object] = {
        "id": "hostile",
        "title": "hostile",
        "data": TABULAR,
        "model": {"kind": "mlp"},
    }
    return task | changes


def nested(levels: int) -> object:
    value: object = []
    for _ in range(levels):
        value = [value]
    return value


HOSTILE_BODIES: list[tuple[str, object, str]] = [
    ("kind is an object", {"task": task_with(data={"kind": {}})}, "task.data.kind"),  # was a 500
    ("kind is a list", {"task": task_with(model={"kind": []})}, "task.model.kind"),
    ("model is a list", {"task": task_with(model=[])}, "task.model"),
    ("title with a lone surrogate", {"task": task_with(title="\ud800")}, "task.title: must be valid Unicode"),
    ("join token with a lone surrogate", {"task": task_with(), "join_token": "\ud800"}, "join_token"),
    ("join token too long to join with", {"task": task_with(), "join_token": "t" * 257}, "join_token: at most 256"),
    ("join token is an object", {"task": task_with(), "join_token": {}}, "join_token: must be a string"),
    ("join token is a list", {"task": task_with(), "join_token": ["t"]}, "join_token: must be a string"),
    ("task is a list", {"task": []}, "task: must be an object"),
    ("title is an object", {"task": task_with(title={})}, "task.title: must be a string"),
    ("a feature column is a list", {"task": task_with(data=TABULAR | {"feature_columns": [[]]})}, "feature_columns[0]"),
    ("label values is an object", {"task": task_with(data=TABULAR | {"label_values": {}})}, "task.data.label_values"),
    ("hidden is a string", {"task": task_with(model={"kind": "mlp", "hidden": "64"})}, "task.model.hidden"),
    ("field named with a lone surrogate", {"task": task_with(**{"\ud800": 1})}, "unknown field"),  # was a 500
    (
        "column named with a lone surrogate",
        {"task": task_with(data=TABULAR | {"categorical": {"\udc00": ["a"]}})},
        "categorical",
    ),
    (
        "max_participants too large for a float",
        {"task": task_with(secure={"max_participants": 10**400})},
        "task.secure.max_participants",
    ),
    ("clip_value too small to encode", {"task": task_with(secure={"clip_value": 5e-324})}, "task.secure.clip_value"),
    ("nested 40 levels inside a field", {"task": task_with(description=nested(40))}, "nested too deeply"),
    ("not JSON", b"{task", "not valid JSON"),
    ("not UTF-8", b'{"task": "\xff"}', "not valid UTF-8"),
    ("body is a list", [], 'send {"task": {...}'),
]


@pytest.mark.parametrize(("name", "body", "words"), HOSTILE_BODIES, ids=[h[0] for h in HOSTILE_BODIES])
def test_hostile_task_definitions_get_a_400_naming_the_problem(
    server: tuple[str, Path], name: str, body: object, words: str
) -> None:
    status, error = post(server[0], body if isinstance(body, bytes) else json.dumps(body).encode())
    assert status == 400 and words in error, (name, status, error)
    assert "Traceback" not in server[1].read_text()


def test_a_task_nested_100000_levels_deep_or_with_a_huge_number_gets_a_400(server: tuple[str, Path]) -> None:
    deep = b'{"task": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # inside the body limit; was a 500
    status, error = post(server[0], deep)
    assert status == 400 and "nested too deeply" in error
    huge = json.dumps({"task": task_with(training={"learning_rate": 1})}).replace(
        '"learning_rate": 1', '"learning_rate": 1' + "0" * 400
    )
    status, error = post(server[0], huge.encode())
    assert status == 400 and "task.training.learning_rate: must be a finite number" in error
    assert "Traceback" not in server[1].read_text()


def test_a_model_too_large_for_the_server_is_refused_when_the_task_is_created(server: tuple[str, Path]) -> None:
    url, _ = server
    status, body = post_task(url, tiny_task("huge", model={"kind": "mlp", "hidden": [1_000_000, 1_000_000]}))
    # before: accepted, and the first join then tried to draw a trillion weights on the event loop
    assert status == 400 and "parameters" in body["error"] and "1,000,006,000,002" in body["error"], body


def test_the_page_arrives_with_the_task_list_in_it_titles_escaped(server: tuple[str, Path]) -> None:
    status, _ = post_task(server[0], tiny_task("shouty", title="<b>Loud</b> & <script>alert(1)</script>"))
    assert status == 201
    status, headers, body = fetch(server[0] + "/")
    page = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert '<section id="home" class="panel">' in page  # shown before (and without) Python
    titanic = page.split('<li data-task="titanic">')[1].split("</li>")[0]
    assert ">Titanic survival</a>" in titanic and '<span class="badge">tabular data</span>' in titanic
    assert '<span class="badge">0 online, 2 needed</span>' in titanic
    assert "&lt;b&gt;Loud&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;</a>" in page
    assert "<script>alert(1)" not in page


def _weights(task: dict[str, object], fill: float | None = None) -> tuple[bytes, str]:
    """Flat float32 weights for `task`'s model (0.01 * index, or all `fill`) and the base64 safetensors of them
    (with a metadata entry the server drops)."""
    slots = layout(build_model(task_from_json(task)))
    values = [fill if fill is not None else 0.01 * i for i in range(sum(s.size for s in slots))]
    flat = struct.pack(f"<{len(values)}f", *values)
    return flat, base64.b64encode(flat_to_safetensors(slots, flat, {"foreign": "dropped"})).decode()


def post_with_weights(url: str, task: dict[str, object], encoded: object) -> tuple[int, str]:
    return post(url, json.dumps({"task": task, "initial_model": encoded}).encode())


def test_a_task_created_with_initial_weights_starts_from_them_federated_or_between_peers(
    server: tuple[str, Path],
) -> None:
    url, _ = server
    federated = tiny_task("starts-from-upload")
    flat, encoded = _weights(federated)
    assert post_with_weights(url, federated, encoded) == (201, "")
    status, _, blob = fetch(f"{url}/api/tasks/starts-from-upload/initial-model")
    slots = layout(build_model(task_from_json(federated)))
    assert status == 200 and safetensors_to_flat(slots, blob) == (flat, {})  # as stored: no foreign metadata
    status, _, global_model = fetch(f"{url}/api/tasks/starts-from-upload/model")
    assert status == 200 and safetensors_to_flat(slots, global_model)[0] == flat  # round 0's global model

    peers = tiny_task("peers-start-from-upload", scheme="decentralized")
    assert post_with_weights(url, peers, encoded) == (201, "")

    async def first_model() -> bytes:
        ws = url.replace("http", "ws", 1) + "/api/tasks/peers-start-from-upload/decentralized"
        async with connect(ws, max_size=None) as peer:
            await peer.send(encode_message(Join(task_id="peers-start-from-upload", samples=3)))
            while True:
                message, payload = decode_message(await asyncio.wait_for(peer.recv(), 10))
                if message.kind == "global_model":
                    return payload

    assert asyncio.run(first_model()) == flat  # the peers' first model is the upload, not the seed's
    status, _, _ = fetch(f"{url}/api/tasks/titanic/initial-model")
    assert status == 404  # drawn from its seed


@pytest.mark.parametrize(
    ("name", "encoded", "words"),
    [
        ("not base64", "@@@", "must be a safetensors file in base64"),
        ("not a string", 7, "must be a safetensors file in base64"),
        ("not safetensors", base64.b64encode(b"hello world, this is text").decode(), "not a safetensors file"),
        ("another model", _weights(tiny_task("x", model={"kind": "mlp", "hidden": [5]}))[1], "expected F32"),
        ("NaN", _weights(tiny_task("x"), math.nan)[1], "NaN or infinite"),
    ],
)
def test_initial_weights_that_do_not_fit_are_refused_and_nothing_is_created(
    server: tuple[str, Path], name: str, encoded: object, words: str
) -> None:
    url, log = server
    status, error = post_with_weights(url, tiny_task("refused-upload"), encoded)
    assert status == 400 and error.startswith("initial_model: ") and words in error, (name, error)
    assert fetch(f"{url}/api/tasks/refused-upload")[0] == 404
    assert "Traceback" not in log.read_text()
