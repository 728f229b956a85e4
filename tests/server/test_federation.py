"""The federated endpoint of a real server process, driven frame by frame: rounds, stragglers, late joiners,
dropouts, pauses, deadlines, tokens, bad input and floods."""

from __future__ import annotations

import asyncio
import itertools
import math
import struct
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import safetensors.numpy

from harness.server_process import running_server
from py_shared.protocol.framing import encode_frame
from py_shared.protocol.messages import Error, GlobalModel, Join, Leave, Message, RoundInfo, Welcome
from tests.server.raw_client import RawClient, post_task, tiny_task

ADMIN = "admin-secret"
SIZE = 22  # parameters of tiny_task's model
PER_ADDRESS = 4
_ids = itertools.count()


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data") / "server.log"


@pytest.fixture(scope="module")
def server(server_log: Path) -> Iterator[str]:
    with running_server(server_log.parent, log_path=server_log, extra_args=("--admin-token", ADMIN)) as url:
        yield url


def new_task(server: str, join_token: str = "", **overrides: Any) -> str:
    task_id = f"t{next(_ids)}"
    status, body = post_task(server, tiny_task(task_id, **overrides), ADMIN, join_token)
    assert status == 201, body
    return task_id


def close_to(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-6) for x, y in zip(a, b, strict=True))


async def first_round(server: str, task: str, first: float, second: float) -> tuple[RawClient, RawClient, list[float]]:
    """Two clients join and send constant updates for round 0; returns them and the round-1 model."""
    a, b = await RawClient.open(server, task), await RawClient.open(server, task)
    await a.join(task)
    await b.join(task)
    await a.update(0, [first] * SIZE)
    await b.update(0, [second] * SIZE)
    _, model = await a.expect("global_model")
    return a, b, model


def test_a_round_closes_with_the_sample_weighted_mean(server: str) -> None:
    task = new_task(server)

    async def scenario() -> None:
        a, b = await RawClient.open(server, task), await RawClient.open(server, task)
        welcome, g0 = await a.join(task, samples=1)
        assert isinstance(welcome, Welcome) and welcome.round == 0 and welcome.vector_size == SIZE
        _, g0b = await b.join(task, samples=3)
        assert g0 == g0b
        ua, ub = [1.0] * SIZE, [float(i) for i in range(SIZE)]
        await a.update(0, ua, samples=1)
        await b.update(0, ub, samples=3)
        for c in (a, b):
            message, g1 = await c.expect("global_model")
            assert isinstance(message, GlobalModel) and message.round == 1
            assert close_to(g1, [g + (x + 3 * y) / 4 for g, x, y in zip(g0, ua, ub, strict=True)])

    run(scenario())


def test_a_stale_update_is_refused_with_the_current_model(server: str) -> None:
    task = new_task(server)

    async def scenario() -> None:
        a, _b, g1 = await first_round(server, task, 0.5, 0.5)
        await a.update(0, [9.0] * SIZE)  # a straggler's update for the closed round
        error, _ = await a.expect("error")
        assert isinstance(error, Error) and error.code == "stale_round" and not error.fatal
        message, current = await a.expect("global_model")
        assert isinstance(message, GlobalModel) and message.round == 1 and current == g1

    run(scenario())


def test_a_late_joiner_gets_the_current_round_and_model(server: str) -> None:
    task = new_task(server)

    async def scenario() -> None:
        a, b, g1 = await first_round(server, task, 0.25, 0.75)
        late = await RawClient.open(server, task)
        welcome, model = await late.join(task)
        assert isinstance(welcome, Welcome) and welcome.round == 1 and welcome.participants == 3
        assert model == g1
        # and it takes part in the next round like everyone else
        for c in (a, b, late):
            await c.update(1, [0.0] * SIZE)
        message, g2 = await late.expect("global_model")
        assert message.round == 2 and close_to(g2, g1)  # type: ignore[union-attr]

    run(scenario())


def test_a_dropout_mid_round_is_not_waited_for(server: str) -> None:
    task = new_task(server)

    async def scenario() -> None:
        clients = [await RawClient.open(server, task) for _ in range(3)]
        for client in clients:
            await client.join(task)
        await clients[0].update(0, [1.0] * SIZE)
        await clients[1].update(0, [1.0] * SIZE)
        await clients[2].close()  # drops without sending
        message, _ = await clients[0].expect("global_model")
        assert message.round == 1  # type: ignore[union-attr]

    run(scenario())


def test_below_the_minimum_clients_wait_then_resume(server: str) -> None:
    task = new_task(server)

    async def scenario() -> None:
        a = await RawClient.open(server, task)
        await a.join(task)
        info, _ = await a.receive()
        assert isinstance(info, RoundInfo) and info.waiting and info.participants == 1
        await a.update(0, [1.0] * SIZE)
        info, _ = await a.receive()
        assert isinstance(info, RoundInfo) and info.updates == 1 and info.waiting  # no round closes alone
        b = await RawClient.open(server, task)
        await b.join(task)
        info, _ = await a.receive()
        assert isinstance(info, RoundInfo) and not info.waiting and info.participants == 2
        await b.update(0, [3.0] * SIZE)
        message, _ = await a.expect("global_model")
        assert message.round == 1  # type: ignore[union-attr]

    run(scenario())


def test_the_round_deadline_closes_without_stragglers(server: str) -> None:
    task = new_task(server, federation={"round_deadline_s": 1.0})

    async def scenario() -> None:
        clients = [await RawClient.open(server, task) for _ in range(3)]
        for client in clients:
            await client.join(task)
        await clients[0].update(0, [1.0] * SIZE)
        await clients[1].update(0, [1.0] * SIZE)
        message, _ = await clients[2].expect("global_model")  # closes after 1 s, without client 2
        assert message.round == 1  # type: ignore[union-attr]
        await clients[2].update(0, [1.0] * SIZE)
        error, _ = await clients[2].expect("error")
        assert error.code == "stale_round"  # type: ignore[union-attr]

    run(scenario())


def test_creating_a_task_needs_the_admin_token(server: str) -> None:
    assert post_task(server, tiny_task("no-token"))[0] == 401
    status, body = post_task(server, tiny_task("wrong-token"), "not-the-token")
    assert status == 401 and "admin token" in body["error"]
    status, body = post_task(server, {"id": "bad"}, ADMIN)
    assert status == 400 and "title" in body["error"]


def test_a_private_task_refuses_a_wrong_or_missing_join_token(server: str) -> None:
    task = new_task(server, join_token="let-me-in")

    async def scenario() -> None:
        for token in ("", "wrong"):
            c = await RawClient.open(server, task)
            await c.send(Join(task_id=task, samples=5, token=token))
            error, _ = await c.receive()
            assert isinstance(error, Error) and error.code == "unauthorized" and error.fatal
            await asyncio.wait_for(c.connection.wait_closed(), 10)
        welcome, _ = await (await RawClient.open(server, task)).join(task, token="let-me-in")
        assert isinstance(welcome, Welcome)

    run(scenario())


def _bad_frames() -> list[tuple[str, bytes | str, str]]:
    header = b'{"kind":"update","round":0,"samples":1}'
    return [
        ("garbage", b"\x00\x01garbage", "bad_frame"),
        ("text frame", "hello", "bad_frame"),
        ("wrong magic", b"XX\x01" + struct.pack("<I", 2) + b"{}", "bad_frame"),
        ("future version", b"PD\x09" + struct.pack("<I", 2) + b"{}", "bad_frame"),
        ("header longer than frame", b"PD\x01" + struct.pack("<I", 999) + b"{}", "bad_frame"),
        ("header not json", b"PD\x01" + struct.pack("<I", 3) + b"{x}", "bad_frame"),
        ("NaN literal in header", b"PD\x01" + struct.pack("<I", 14) + b'{"round":NaN}', "bad_frame"),
        ("unknown kind", encode_frame({"kind": "hello"}), "bad_message"),
        ("kind is an object", encode_frame({"kind": {}}), "bad_message"),  # raised TypeError: socket dropped
        ("kind is a list", encode_frame({"kind": []}), "bad_message"),
        ("header nested too deeply", b"PD\x01" + struct.pack("<I", 10_000) + b"[" * 10_000, "bad_frame"),
        (
            "lone surrogate",
            encode_frame({"kind": "join", "task_id": "x", "samples": 1, "token": "\ud800"}),
            "bad_message",
        ),
        ("missing field", encode_frame({"kind": "update", "round": 0}, b"\0" * 88), "bad_message"),
        ("update without vector", encode_frame({"kind": "update", "round": 0, "samples": 1}), "bad_message"),
        ("ragged payload", b"PD\x01" + struct.pack("<I", len(header)) + header + b"\0" * 5, "bad_frame"),
        ("wrong length", encode_frame({"kind": "update", "round": 0, "samples": 1}, b"\0" * 40), "wrong_length"),
        (
            "NaN",
            encode_frame({"kind": "update", "round": 0, "samples": 1}, struct.pack("<f", math.nan) * SIZE),
            "not_finite",
        ),
        (
            "Inf",
            encode_frame({"kind": "update", "round": 0, "samples": 1}, struct.pack("<f", math.inf) * SIZE),
            "not_finite",
        ),
        ("oversized", encode_frame({"kind": "update", "round": 0, "samples": 1}, b"\0" * 4 * 100_000), "too_large"),
        (
            "server-only message",
            encode_frame(
                {
                    "kind": "welcome",
                    "client_id": "x",
                    "round": 0,
                    "participants": 1,
                    "min_participants": 1,
                    "vector_size": 1,
                }
            ),
            "unexpected",
        ),
        ("second join", encode_frame({"kind": "join", "task_id": "x", "samples": 1}), "unexpected"),
    ]


def test_every_kind_of_bad_input_gets_an_error_and_the_round_is_unharmed(server: str) -> None:
    task = new_task(server)

    async def scenario() -> None:
        honest, noisy = await RawClient.open(server, task), await RawClient.open(server, task)
        _, g0 = await honest.join(task, samples=2)
        await noisy.join(task, samples=2)
        await honest.update(0, [1.0] * SIZE, samples=2)
        for name, frame, code in _bad_frames():
            await noisy.send_raw(frame)
            error, _ = await noisy.expect("error")
            assert isinstance(error, Error) and error.code == code and not error.fatal, name
        await noisy.update(0, [3.0] * SIZE, samples=2)  # its valid update still counts
        message, g1 = await honest.expect("global_model")
        assert message.round == 1 and close_to(g1, [g + 2.0 for g in g0])  # type: ignore[union-attr]
        await noisy.expect("global_model")
        await noisy.update(1, [0.0] * SIZE)
        await noisy.update(1, [0.0] * SIZE)
        error, _ = await noisy.expect("error")
        assert error.code == "duplicate_update"  # type: ignore[union-attr]

    run(scenario())


def _nested(levels: int) -> object:
    value: object = []
    for _ in range(levels):
        value = [value]
    return value


def _raw_header(text: bytes) -> bytes:
    return b"PD\x01" + struct.pack("<I", len(text)) + text


UPDATE = {"kind": "update", "round": 0, "samples": 1}
HOSTILE = "hostile"  # a private task: the join handler compares tokens
JOIN = {"kind": "join", "task_id": HOSTILE, "samples": 1}
VECTOR = b"\0" * 4 * SIZE
# Each is sent before joining, on a connection of its own: (name, frame, error code, words the message must hold).
HOSTILE_HEADERS: list[tuple[str, bytes, str, str]] = [
    ("kind is an object", encode_frame({"kind": {}}), "bad_message", "message.kind: must be one of"),
    ("kind is a list", encode_frame({"kind": []}), "bad_message", "message.kind: must be one of"),
    ("kind is a number", encode_frame({"kind": 7}), "bad_message", "message.kind: must be one of"),
    ("samples is an object", encode_frame(UPDATE | {"samples": {}}, VECTOR), "bad_message", "message.samples"),
    ("round is a list", encode_frame(UPDATE | {"round": []}, VECTOR), "bad_message", "message.round"),
    ("samples is 1e999", _raw_header(b'{"kind":"join","task_id":"x","samples":1e999}'), "bad_message", "samples"),
    ("token is an object", encode_frame(JOIN | {"token": {}}), "bad_message", "message.token: must be a string"),
    ("token is a list", encode_frame(JOIN | {"token": ["x"]}), "bad_message", "message.token: must be a string"),
    ("token with a lone surrogate", encode_frame(JOIN | {"token": "\ud800"}), "bad_message", "message.token"),
    ("name with a lone surrogate", encode_frame(JOIN | {"client_name": "\udfff"}), "bad_message", "client_name"),
    ("field named with a lone surrogate", encode_frame({"kind": "leave", "\ud800": 1}), "bad_message", "unknown"),
    (
        "code is a nested list",
        encode_frame({"kind": "error", "code": _nested(20), "message": "m"}),
        "bad_message",
        "code",
    ),
    ("header nested 40 levels", encode_frame({"kind": "leave", "x": _nested(40)}), "bad_frame", "nested too deeply"),
    ("header nested 10,000 levels", _raw_header(b"[" * 10_000), "bad_frame", "nested too deeply"),
    ("integer of 5,000 digits", _raw_header(b'{"kind":"join","samples":1' + b"0" * 5000 + b"}"), "bad_frame", "JSON"),
]


@pytest.fixture(scope="module")
def hostile_task(server: str) -> str:
    assert post_task(server, tiny_task(HOSTILE), ADMIN, "tok")[0] == 201
    return HOSTILE


@pytest.mark.parametrize(("name", "frame", "code", "words"), HOSTILE_HEADERS, ids=[h[0] for h in HOSTILE_HEADERS])
def test_a_hostile_header_gets_a_bad_message_naming_the_field_and_no_traceback(
    server: str, hostile_task: str, server_log: Path, name: str, frame: bytes, code: str, words: str
) -> None:
    task = hostile_task

    async def scenario() -> None:
        c = await RawClient.open(server, task)
        await c.send_raw(frame)
        error, _ = await c.receive()
        assert isinstance(error, Error) and error.code == code and not error.fatal, (name, error)
        assert words in error.message, (name, error.message)
        welcome, _ = await c.join(task, token="tok")  # the connection still works
        assert isinstance(welcome, Welcome)
        await c.close()

    run(scenario())
    assert "Traceback" not in server_log.read_text(), name


def test_a_message_before_joining_is_refused(server: str) -> None:
    task = new_task(server)

    async def scenario() -> None:
        c = await RawClient.open(server, task)
        await c.update(0, [0.0] * SIZE)
        error, _ = await c.receive()
        assert isinstance(error, Error) and error.code == "unexpected"
        welcome, _ = await c.join(task)  # and it can still join
        assert isinstance(welcome, Welcome)

    run(scenario())


def test_an_unknown_task_is_refused(server: str) -> None:
    async def scenario() -> None:
        c = await RawClient.open(server, "no-such-task")
        error, _ = await c.receive()
        assert isinstance(error, Error) and error.code == "unknown_task" and error.fatal

    run(scenario())


def test_a_client_that_keeps_sending_garbage_is_disconnected(server: str) -> None:
    task = new_task(server)

    async def scenario() -> None:
        c = await RawClient.open(server, task)
        await c.join(task)
        last = None
        for _ in range(25):
            try:
                await c.send_raw(b"junk")
                while (last := (await c.receive())[0]).kind != "error":
                    pass
            except Exception:
                break
        assert isinstance(last, Error) and last.fatal
        await asyncio.wait_for(c.connection.wait_closed(), 10)

    run(scenario())


def test_a_connection_flood_is_bounded_and_others_keep_working(tmp_path: Path) -> None:
    async def scenario(server: str, task: str) -> None:
        flood = [await RawClient.open(server, task) for _ in range(PER_ADDRESS)]
        extra = await RawClient.open(server, task)
        error, _ = await extra.receive()
        assert isinstance(error, Error) and error.code == "server_full" and error.fatal
        for c in flood[2:]:
            await c.send(Leave())
        await asyncio.sleep(0.5)
        a, b = flood[0], flood[1]
        await a.join(task)
        await b.join(task)
        await a.update(0, [1.0] * SIZE)
        await b.update(0, [1.0] * SIZE)
        message, _ = await a.expect("global_model")
        assert message.round == 1  # type: ignore[union-attr]

    args = ("--admin-token", ADMIN, "--max-connections-per-address", str(PER_ADDRESS))
    with running_server(tmp_path, extra_args=args) as server:
        run(scenario(server, new_task(server)))


def test_tasks_models_and_rounds_survive_a_restart(tmp_path: Path) -> None:
    async def first_life(server: str, task: str) -> list[float]:
        a, b = await RawClient.open(server, task), await RawClient.open(server, task)
        await a.join(task, token="tok")
        await b.join(task, token="tok")
        for r in range(2):
            await a.update(r, [0.5] * SIZE)
            await b.update(r, [0.25] * SIZE)
            _, model = await a.expect("global_model")
        return model

    async def second_life(server: str, task: str) -> tuple[Message, list[float]]:
        return await (await RawClient.open(server, task)).join(task, token="tok")

    args = ("--admin-token", ADMIN)
    with running_server(tmp_path, extra_args=args) as server:
        task = "kept"
        assert post_task(server, tiny_task(task), ADMIN, "tok")[0] == 201
        before = run(first_life(server, task))
    with running_server(tmp_path, extra_args=args) as server:
        welcome, after = run(second_life(server, task))
        assert isinstance(welcome, Welcome) and welcome.round == 2
        assert after == before


def test_updates_near_the_float32_maximum_are_refused_and_the_global_model_stays_finite(server: str) -> None:
    task = new_task(server)

    async def first_reply(client: RawClient) -> Message:
        while isinstance(message := (await client.receive())[0], RoundInfo):
            pass
        return message

    async def scenario() -> list[float]:
        a, b = await RawClient.open(server, task), await RawClient.open(server, task)
        _, g0 = await a.join(task, samples=10**9)
        await b.join(task, samples=10**9)
        for c in (a, b):  # finite, yet 3e38 x 1e9 samples overflows float32: the model became Inf/NaN
            await c.update(0, [3e38] * SIZE, samples=10**9)
        for c in (a, b):
            reply = await first_reply(c)
            assert isinstance(reply, Error) and reply.code == "too_large" and not reply.fatal, reply
            assert "too large" in reply.message
        for c in (a, b):  # an honest round still closes
            await c.update(0, [0.5] * SIZE, samples=1)
        message, g1 = await a.expect("global_model")
        assert message.round == 1 and close_to(g1, [g + 0.5 for g in g0])  # type: ignore[union-attr]
        return g1

    g1 = run(scenario())
    with urllib.request.urlopen(f"{server}/api/tasks/{task}/model", timeout=10) as response:
        stored = [float(v) for t in safetensors.numpy.load(response.read()).values() for v in t.ravel()]
    assert all(math.isfinite(v) for v in stored) and sorted(stored) == sorted(g1)


def test_the_global_model_downloads_as_safetensors_and_a_private_one_needs_its_token(server: str) -> None:
    task = new_task(server, join_token="secret")
    url = f"{server}/api/tasks/{task}/model"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    request = urllib.request.Request(url, headers={"authorization": "Bearer secret"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["x-pydisco-round"] == "0"
        tensors = safetensors.numpy.load(response.read())
    assert sum(t.size for t in tensors.values()) == SIZE
