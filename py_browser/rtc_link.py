"""One WebRTC data channel to one peer, from the page's worker (py_shared.protocol.peer_link does the chunking and
pacing).

RTCPeerConnection exists only on the page's main thread, so the connection lives there (www/peer_links.js) and
this worker drives it through PyScript's window proxy: it hands over the peer's signals and each chunk to send;
the connection's events (local signals to forward, the channel opening, chunks received, the send buffer falling
low, the end) come back through one callback proxy, destroyed when the link closes. Chunks cross between the
threads as copies (structured clone), which at 64 KiB each costs far less than the training they feed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from pyodide.ffi import create_proxy, to_js
from pyscript import window

from py_shared.protocol.chunks import CHUNK_BYTES
from py_shared.protocol.peer_link import DEFAULT_MAX_FRAME_BYTES, LOW_BUFFERED, PeerLink, SendSignal, describe
from py_shared.protocol.peer_messages import IceServer
from py_shared.protocol.transport import ConnectionClosed

log = logging.getLogger("pydisco.rtc")


def _links() -> Any:
    links = getattr(window, "pydiscoLinks", None)
    if links is None:
        raise ConnectionClosed("this page cannot make WebRTC connections (www/peer_links.js is not loaded)")
    return links


class BrowserRtcLink(PeerLink):
    """A PeerLink over a connection owned by the page's main thread."""

    def __init__(self, peer_id: str, initiator: bool, send_signal: SendSignal, ice_servers: Sequence[IceServer],
                 max_frame_bytes: int) -> None:  # fmt: skip
        super().__init__(peer_id, initiator, max_frame_bytes)
        self._outgoing: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._forwarder = asyncio.ensure_future(self._forward(send_signal))
        self._events = create_proxy(self._on_event)
        servers = [
            {"urls": list(s.urls), **({"username": s.username, "credential": s.credential} if s.username else {})}
            for s in ice_servers
        ]
        self._handle = _links().open(peer_id, initiator, json.dumps(servers), LOW_BUFFERED, self._events)

    def _on_event(self, kind: str, data: Any) -> None:
        if kind == "chunk":
            self.chunk_received(bytes(data.to_py()) if hasattr(data, "to_py") else bytes(data))
        elif kind == "signal":
            self._outgoing.put_nowait((str(data.what), str(data.data)))
        elif kind == "open":
            limit = int(data or 0)  # pc.sctp.maxMessageSize; 0 when the browser does not say
            if 0 < limit < CHUNK_BYTES:
                self.closed(f"peer {self.peer_id} takes messages of at most {limit} bytes, less than one chunk")
            else:
                self.channel_opened()
        elif kind == "low":
            self.writable()
        elif kind == "closed":
            self.closed(str(data))

    async def _forward(self, send_signal: SendSignal) -> None:
        """Send this side's offer, answer and candidates to the peer through the server, in order."""
        while True:
            what, data = await self._outgoing.get()
            try:
                await send_signal(what, data)
            except Exception as e:
                self.closed(f"cannot send a {what} to peer {self.peer_id}: {describe(e)}")
                return

    def _buffered(self) -> int:
        # asked each time: a "low" event may be stale by the time it reaches the worker
        return int(_links().buffered(self._handle))

    def _send_chunk(self, chunk: bytes) -> None:
        if int(_links().send(self._handle, to_js(chunk))) < 0:
            self.closed(f"the data channel to peer {self.peer_id} is not open")
            raise ConnectionClosed(self._close_reason)

    async def _apply_signal(self, what: str, data: str) -> str | None:
        if what not in ("offer", "answer", "candidate"):
            log.warning("peer %s: ignoring an unknown signal %r", self.peer_id, what)
            return None
        _links().signal(self._handle, what, data)  # the answer, if any, comes back as a "signal" event
        return None

    async def _release(self) -> None:
        self._forwarder.cancel()
        _links().close(self._handle)
        self._events.destroy()


async def open_link(
    peer_id: str,
    initiator: bool,
    send_signal: SendSignal,
    signals: asyncio.Queue[tuple[str, str]],
    ice_servers: Sequence[IceServer] = (),
    timeout_s: float = 20.0,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> BrowserRtcLink:
    """Connect to `peer_id` (the initiator offers, the other answers), as py_cli.rtc_link.open_link does."""
    link = BrowserRtcLink(peer_id, initiator, send_signal, ice_servers, max_frame_bytes)

    async def nothing() -> None:  # the main thread makes the initiator's offer as soon as it opens the connection
        return None

    await link.establish(nothing, signals, send_signal, timeout_s)
    return link
