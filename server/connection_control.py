"""uvicorn's WebSocket protocol, plus the per-connection controls that plain ASGI lacks.

ASGI gives an app whole messages and a send that returns once bytes are handed to the transport. A server that
must hold a crowd needs more, per connection, which this protocol offers the app through the scope extension
`pydisco.connection`: a frame-size limit that changes over the connection's life (a client that has not joined
may send a few kilobytes, not a model: the limit is checked against the frame header, before any payload is
read), a wait until the connection's write buffer has drained (so sends can be paced and a client that does not
read is noticed), and an abort that frees a connection whose peer stopped reading (closing it politely would
wait for that peer forever). Over all connections, reading large messages goes through one ReadGate, so a crowd
sending at once is read a few at a time instead of all into memory together.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from server.read_gate import ReadGate

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
    """WebSocketsSansIOProtocol with a ConnectionControl in each connection's ASGI scope and gated large reads."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # one gate per uvicorn server (its state object is shared by all of its connections)
        if not hasattr(server_state, "pydisco_read_gate"):
            server_state.pydisco_read_gate = ReadGate()
        self.gate: ReadGate = server_state.pydisco_read_gate
        self.gated = False  # stopped by the gate (uvicorn's own read_paused waits for the app)
        self.release_on_receive = False

    def handle_connect(self, event: Any) -> None:
        """Accept the handshake as uvicorn does, then offer the controls (before the app's task first runs)."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][EXTENSION] = ConnectionControl(self)

    def data_received(self, data: bytes) -> None:
        """Parse as uvicorn does, then ask the gate whether a large message in progress may go on being read."""
        super().data_received(data)
        if not self.disconnected and not self.transport.is_closing():
            self.gate.reading(self, len(self.conn.reader.buffer))

    # websockets' parser keeps its last Frame in a local variable until the next frame arrives: unless the frame lets
    # go of its payload once uvicorn has taken it, every participant waiting for a round to close keeps its whole
    # last update alive (a thousand 0.8 MB updates: 800 MB)
    def handle_text(self, event: Frame) -> None:
        """uvicorn's handler, then the parsed frame forgets its payload."""
        super().handle_text(event)
        event.data = b""

    def handle_bytes(self, event: Frame) -> None:
        """uvicorn's handler, then the parsed frame forgets its payload."""
        super().handle_bytes(event)
        event.data = b""

    def handle_cont(self, event: Frame) -> None:
        """uvicorn's handler, then the parsed frame forgets its payload."""
        super().handle_cont(event)
        event.data = b""

    def send_receive_event_to_app(self) -> None:
        """Hand the message over; a slot it was read under is kept until the app has finished with it."""
        super().send_receive_event_to_app()
        if self.gate.holds(self):
            self.release_on_receive = True

    async def receive(self) -> Any:
        """uvicorn's receive, which also gives back the slot of the message before and respects the gate."""
        if self.release_on_receive:
            self.release_on_receive = False
            self.gate.done(self)
        message = await self.queue.get()
        if self.read_paused and self.queue.empty():
            self.read_paused = False
            if not self.gated:
                self.transport.resume_reading()
        return message

    def connection_lost(self, exc: Exception | None) -> None:
        """Give the slot (or the place in line) to the next connection."""
        self.gate.done(self)
        super().connection_lost(exc)

    def gate_pause(self) -> None:
        """Stop reading until the gate lets this connection in; no keepalive verdict meanwhile (pongs queue too)."""
        self.gated = True
        self.stop_keepalive()
        self.transport.pause_reading()

    def gate_resume(self) -> None:
        """Read again, unless the app has not taken the previous message yet."""
        self.gated = False
        if not self.transport.is_closing():
            self.start_keepalive()
            if not self.read_paused:
                self.transport.resume_reading()


def control_of(scope: Any) -> ConnectionControl | None:
    """The connection's controls, or None under another server (the app then falls back to plain ASGI)."""
    extensions = scope.get("extensions") or {}
    control = extensions.get(EXTENSION)
    return control if isinstance(control, ConnectionControl) else None
