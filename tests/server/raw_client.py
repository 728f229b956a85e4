"""A protocol-level test client: sends exactly the frames a test wants and reads what the server answers."""

from __future__ import annotations

import asyncio
import json
import struct
import urllib.error
import urllib.request
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from py_cli.websocket_transport import federated_url
from py_shared.protocol.messages import Join, Message, Update, decode_message, encode_message

TIMEOUT_S = 20


def floats(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def unpack(payload: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(payload) // 4}f", payload))


def tiny_task(task_id: str, **overrides: Any) -> dict[str, Any]:
    """A federated task whose model has 22 parameters: 2 inputs, 4 hidden units, 2 classes."""
    task = {
        "id": task_id,
        "title": f"test {task_id}",
        "data": {"kind": "tabular", "feature_columns": ["a", "b"], "label_column": "y", "label_values": ["0", "1"]},
        "model": {"kind": "mlp", "hidden": [4]},
        "scheme": "federated",
        "min_participants": 2,
    }
    task.update(overrides)
    return task


def post_task(server: str, task: dict[str, Any], admin: str = "", join_token: str = "") -> tuple[int, dict[str, Any]]:
    body = json.dumps({"task": task, "join_token": join_token}).encode()
    request = urllib.request.Request(f"{server}/api/tasks", body, method="POST")
    if admin:
        request.add_header("authorization", f"Bearer {admin}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class RawClient:
    """One WebSocket connection to a task's federated endpoint."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def open(cls, server: str, task_id: str) -> RawClient:
        return cls(await connect(federated_url(server, task_id), max_size=None))

    async def send(self, message: Message, vector: list[float] | None = None) -> None:
        await self.connection.send(encode_message(message, floats(vector) if vector is not None else b""))

    async def send_raw(self, data: bytes | str) -> None:
        await self.connection.send(data)

    async def receive(self) -> tuple[Message, list[float]]:
        frame = await asyncio.wait_for(self.connection.recv(), TIMEOUT_S)
        assert isinstance(frame, bytes)
        message, payload = decode_message(frame)
        return message, unpack(payload)

    async def expect(self, kind: str) -> tuple[Message, list[float]]:
        """Skip round_info news until a `kind` message arrives."""
        while True:
            message, vector = await self.receive()
            if message.kind == kind:
                return message, vector
            assert message.kind == "round_info", f"expected {kind}, got {message}"

    async def join(self, task_id: str, samples: int = 10, token: str = "") -> tuple[Message, list[float]]:
        """Join and return (welcome, global model vector)."""
        await self.send(Join(task_id=task_id, samples=samples, token=token))
        welcome, _ = await self.expect("welcome")
        _, vector = await self.expect("global_model")
        return welcome, vector

    async def update(self, round_: int, vector: list[float], samples: int = 10) -> None:
        await self.send(Update(round=round_, samples=samples), vector)

    async def close(self) -> None:
        await self.connection.close()
