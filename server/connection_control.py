"""uvicorn's WebSocket protocol, plus the per-connection controls that plain ASGI lacks.

ASGI gives an app whole messages and a send that returns once bytes are handed to the transport. A server that
must hold a crowd needs three more things per connection, which this protocol offers the app through the scope
extension `pydisco.connection`: a frame-size limit that changes over the connection's life (a client that has
not joined may send a few kilobytes, not a model: the limit is checked against the frame header, before any
payload is read), a wait until the connection's write buffer has drained (so sends can be paced and a client
that does not read is noticed), and an abort that frees a connection whose peer stopped reading (closing it
politely would wait for that peer forever).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

EXTENSION = "pydisco.connection"


class ConnectionControl:
    """What the app may do to its connection beyond ASGI."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    def limit_frames(self, max_bytes: int) -> None:
        """Refuse (close with 1009) any later message longer than `max_bytes`, before reading its payload."""
        self._protocol.conn.max_message_size = max_bytes

    async def drained(self) -> None:
        """Return once the write buffer is below the transport's low-water mark (or the connection is gone)."""
        await self._protocol.writable.wait()

    def abort(self) -> None:
        """Drop the connection now, discarding whatever it still had to send."""
        self._protocol.transport.abort()


class ControlledWebSocketProtocol(WebSocketsSansIOProtocol):
    """WebSocketsSansIOProtocol that puts a ConnectionControl into each connection's ASGI scope."""

    def handle_connect(self, event: Any) -> None:
        """Accept the handshake as uvicorn does, then offer the controls (before the app's task first runs)."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][EXTENSION] = ConnectionControl(self)


def control_of(scope: Any) -> ConnectionControl | None:
    """The connection's controls, or None under another server (the app then falls back to plain ASGI)."""
    extensions = scope.get("extensions") or {}
    control = extensions.get(EXTENSION)
    return control if isinstance(control, ConnectionControl) else None
