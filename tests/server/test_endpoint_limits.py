"""What one connection can cost the server, against the real uvicorn server: a frame too large for a connection
that has not joined is refused from its header, a participant that stops reading is dropped without holding
up anyone, and the first join of a task builds its model without stopping the event loop."""

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

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from harness.server_process import running_server
from py_cli.websocket_transport import federated_url
from py_shared.protocol.messages import Join, RoundInfo, encode_message
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
