"""The CPython side of the federated transport: a `websockets` connection feeding a QueuedTransport."""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed as WebSocketClosed
from websockets.exceptions import InvalidHandshake, InvalidURI

from py_shared.protocol.framing import KEEPALIVE_TIMEOUT_S
from py_shared.protocol.transport import Connect, ConnectionClosed, QueuedTransport

MAX_FRAME_BYTES = 128 * 1024 * 1024


def federated_url(server: str, task_id: str) -> str:
    """The task's federated WebSocket URL on a server given as http(s)://host:port."""
    return task_url(server, task_id, "federated")


def task_url(server: str, task_id: str, endpoint: str) -> str:
    """The task's WebSocket URL for `endpoint` (federated, decentralized) on a server given as http(s)://host:port."""
    base = server.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return f"{base}/api/tasks/{task_id}/{endpoint}"


class WebSocketTransport(QueuedTransport):
    """One open connection; a reader task queues every binary frame that arrives."""

    def __init__(self, connection: ClientConnection) -> None:
        super().__init__()
        self.connection = connection
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.connection:
                if isinstance(frame, bytes):
                    self.deliver(frame)
            self.closed("the server closed the connection")
        except WebSocketClosed as e:
            self.closed(f"connection lost ({e})")

    async def send(self, frame: bytes) -> None:
        try:
            await self.connection.send(frame)
        except WebSocketClosed as e:
            self.closed(f"connection lost ({e})")
            raise ConnectionClosed(str(e)) from None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.connection.close()
        self.reader.cancel()
        self.closed("closed by this client")


def connector(url: str) -> Connect:
    """A Connect function for the federated client: opens a fresh connection to `url` on each call."""

    async def open_connection() -> QueuedTransport:
        try:
            connection = await connect(url, max_size=MAX_FRAME_BYTES, open_timeout=10, compression=None,
                                       ping_timeout=KEEPALIVE_TIMEOUT_S)  # fmt: skip
        except (InvalidHandshake, InvalidURI, TimeoutError) as e:
            raise ConnectionClosed(f"cannot connect to {url}: {e}") from None
        return WebSocketTransport(connection)

    return open_connection
