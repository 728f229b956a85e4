"""What one connection can cost the server, against the real uvicorn server: a frame too large for a connection
that has not joined is refused from its header, a participant that stops reading is dropped without holding
up anyone, the first join of a task builds its model without stopping the event loop, and participants waiting for
a round to close hold none of the updates they sent."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from harness.server_process import running_server
from py_cli.websocket_transport import federated_url
from py_shared.protocol.messages import Join, Message, RoundInfo, Update, decode_message, encode_message
from tests.server.raw_client import RawClient, post_task, tiny_task

SEND_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("data")
    log = data / "server.log"
    with running_server(data, log_path=log, extra_args=("--send-timeout", str(SEND_TIMEOUT_S))) as url:
        yield url, log


def rss_mb(server: str) -> float:
    with urllib.request.urlopen(f"{server}/api/health", timeout=30) as r:
        return float(json.load(r)["rss_bytes"]) / 2**20


def create(server: str, task_id: str, **overrides: object) -> str:
    status, body = post_task(server, tiny_task(task_id, **overrides))
    assert status == 201, body
    return task_id


def test_frames_too_large_for_a_connection_that_has_not_joined_are_refused_unread(server: tuple[str, Path]) -> None:
    url, _ = server
    task = create(url, "prejoin")
    before = rss_mb(url)

    async def oversized() -> int | None:
        async with connect(federated_url(url, task), max_size=None, compression=None) as connection:
            try:
                await connection.send(bytes(100 * 2**20))  # no join first: it needs a few hundred bytes
                await asyncio.wait_for(connection.recv(), 20)
            except ConnectionClosed as e:
                return e.rcvd.code if e.rcvd else None
        return None

    for _ in range(4):
        assert asyncio.run(oversized()) == 1009  # "message too big", said before the payload was read
    # before: each 100 MiB frame was read whole, refused with too_large, and the process kept ~400 MiB
    assert rss_mb(url) - before < 50


def _raw_join(url: str, task: str) -> socket.socket:
    """Join over a socket with a tiny receive buffer that is then never read: a participant that stopped reading."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /api/tasks/{task}/federated HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert b" 101 " in response.split(b"\r\n")[0], response
    payload, mask = encode_message(Join(task_id=task, samples=1)), os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(struct.pack("!BBH", 0x82, 0x80 | 126, len(payload)) + mask + masked)
    return sock


def test_a_participant_that_stops_reading_is_dropped_and_the_rounds_go_on(server: tuple[str, Path]) -> None:
    url, log = server
    # about a million values: the first global model alone is more than the stalled socket's buffers hold
    task = create(url, "nonreader", model={"kind": "mlp", "hidden": [1000, 1000]}, min_participants=1,
                  federation={"round_deadline_s": 1.0})  # fmt: skip
    stalled = _raw_join(url, task)

    async def honest() -> list[int]:
        client = await RawClient.open(url, task)
        _, model = await client.join(task, samples=1)
        rounds, alone = [], False
        for r in range(3):
            await client.update(r, [0.0] * len(model), samples=1)
            while True:  # before: the first broadcast blocked on the stalled socket, and this timed out
                message, _ = await client.receive()
                if isinstance(message, RoundInfo) and message.participants == 1:
                    alone = True
                if message.kind == "global_model":
                    rounds.append(message.round)  # type: ignore[union-attr]
                    break
        while not alone:
            message, _ = await client.receive()
            alone = isinstance(message, RoundInfo) and message.participants == 1
        await client.close()
        return rounds

    try:
        assert asyncio.run(honest()) == [1, 2, 3]
    finally:
        stalled.close()
    deadline = time.monotonic() + 10
    while "read nothing for 2 s" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "read nothing for 2 s" in log.read_text()


def test_the_first_join_builds_the_model_without_stopping_other_requests(server: tuple[str, Path]) -> None:
    url, _ = server
    task = create(url, "bigroom", model={"kind": "mlp", "hidden": [2000, 2000]})  # seconds of kernel compiling

    async def scenario() -> tuple[float, float]:
        started = time.monotonic()
        client = await RawClient.open(url, task)  # the connection is what makes the server build the room
        await client.send(Join(task_id=task, samples=1))
        welcome = asyncio.ensure_future(client.expect("welcome"))
        slowest = 0.0
        while not welcome.done():  # /api/health, again and again while the room is being built
            asked = time.monotonic()
            await asyncio.to_thread(rss_mb, url)
            slowest = max(slowest, time.monotonic() - asked)
        await welcome
        await client.close()
        return slowest, time.monotonic() - started

    slowest, welcomed = asyncio.run(scenario())
    print(f"the slowest /api/health took {slowest:.2f} s; the welcome came after {welcomed:.2f} s")
    # before: the room was built on the event loop, and one /api/health waited about as long as the join did
    assert slowest < welcomed / 2, (slowest, welcomed)


def test_participants_waiting_for_the_round_hold_no_update_and_the_sum_is_exact(server: tuple[str, Path]) -> None:
    url, _ = server
    # 805,402 values (3.2 MB an update); more senders than the server reads large messages at once (16)
    task = create(url, "waiting", model={"kind": "mlp", "hidden": [1000, 800]}, min_participants=1)
    senders = 32

    async def receive(connection: ClientConnection, kind: str) -> tuple[Message, bytes]:
        while True:
            message, payload = decode_message(await asyncio.wait_for(connection.recv(), 60), 2**26)
            if message.kind == kind and not (isinstance(message, RoundInfo) and message.updates == 0):
                return message, payload

    async def scenario() -> tuple[float, np.ndarray, np.ndarray]:
        # max_queue=None: these clients read only what the test asks for, and must not stop reading the rest
        connections = [
            await connect(federated_url(url, task), max_size=None, max_queue=None, compression=None)
            for _ in range(senders + 1)
        ]
        start = np.zeros(0, dtype=np.float32)
        for c in connections:
            await c.send(encode_message(Join(task_id=task, samples=1)))
            _, payload = await receive(c, "global_model")
            start = np.frombuffer(payload, dtype=np.float32)
        holdout, crowd = connections[0], connections[1:]
        before = await asyncio.to_thread(rss_mb, url)
        deltas = [np.full(start.size, (i + 1) / 1024, dtype=np.float32) for i in range(senders)]
        await asyncio.gather(
            *(
                c.send(encode_message(Update(round=0, samples=1), d.tobytes()))
                for c, d in zip(crowd, deltas, strict=True)
            )
        )
        for c in crowd:  # each sender hears that its update was taken in: all 32 are summed, none closed the round
            await receive(c, "round_info")
        grown = await asyncio.to_thread(rss_mb, url) - before
        await holdout.send(encode_message(Update(round=0, samples=1), np.zeros(start.size, np.float32).tobytes()))
        _, payload = await receive(holdout, "global_model")
        for c in connections:
            await c.close()
        expected = start + sum(deltas) / np.float32(senders + 1)
        return grown, np.frombuffer(payload, dtype=np.float32), expected

    grown, model, expected = asyncio.run(scenario())
    print(f"server RSS grew {grown:.0f} MB while 32 participants waited for the round")
    # before: every waiting connection kept its last update twice (the parser's frame and the endpoint's
    # variables), and the server grew 217 MB here
    assert grown < 80, grown
    np.testing.assert_allclose(model, expected, rtol=0, atol=1e-6)
