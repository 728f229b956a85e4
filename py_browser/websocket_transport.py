"""The browser side of the server's transport (federated rounds, decentralized signaling): the page worker's
WebSocket feeding a QueuedTransport."""

from __future__ import annotations

import asyncio
from typing import Any

import js
from pyodide.ffi import create_proxy, to_js

from py_shared.protocol.transport import Connect, ConnectionClosed, QueuedTransport

OPEN = 1  # WebSocket.OPEN


def task_url(task_id: str, scheme: str) -> str:
    """The task's WebSocket URL for `scheme` (federated, decentralized) on the server that served this page (wss:
    behind HTTPS)."""
    # a PyScript worker runs from a blob: URL, whose location has no host; its origin is the page's
    origin = str(js.location.origin)
    return "ws" + origin.removeprefix("http") + f"/api/tasks/{task_id}/{scheme}"


class BrowserWebSocket(QueuedTransport):
    """One WebSocket; its event handlers queue binary frames and report the close."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.socket: Any = js.WebSocket.new(url)
        self.socket.binaryType = "arraybuffer"
        self._handlers = {
            "open": create_proxy(self._on_open),
            "message": create_proxy(self._on_message),
            "close": create_proxy(self._on_close),
        }
        for event, handler in self._handlers.items():
            self.socket.addEventListener(event, handler)

    def _on_open(self, event: Any) -> None:
        if not self.opened.done():
            self.opened.set_result(None)

    def _on_message(self, event: Any) -> None:
        if not isinstance(event.data, str):
            self.deliver(bytes(event.data.to_bytes()))

    def _on_close(self, event: Any) -> None:
        reason = f"connection closed (code {event.code}{', ' + event.reason if event.reason else ''})"
        self.closed(reason)
        if not self.opened.done():
            self.opened.set_exception(ConnectionClosed(f"cannot connect to the server: {reason}"))
        for event_name, handler in self._handlers.items():
            self.socket.removeEventListener(event_name, handler)
            handler.destroy()
        self._handlers = {}

    async def send(self, frame: bytes) -> None:
        if self.socket.readyState != OPEN:
            raise ConnectionClosed("the connection is not open")
        self.socket.send(to_js(frame))

    async def close(self) -> None:
        self.socket.close()


def connector(url: str) -> Connect:
    """A Connect function for the federated client: a fresh WebSocket to `url` on each call."""

    async def open_connection() -> QueuedTransport:
        transport = BrowserWebSocket(url)
        await transport.opened
        return transport

    return open_connection
