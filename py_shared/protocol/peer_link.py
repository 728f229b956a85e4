"""A link to one peer over a WebRTC data channel, as a QueuedTransport of whole protocol frames, whoever owns the
channel (aiortc in py_cli, the page's main thread in py_browser).

The round logic wants what it has from the server's WebSocket: whole frames, in order, and ConnectionClosed with a
reason when the peer is gone or misbehaves. A data channel gives neither: browsers disagree on how large one
message may be, so frames travel as 64 KiB chunks (chunks.py), and `send` must not queue megabytes inside the
channel, so it pauses while more than MAX_BUFFERED bytes wait there, until the channel says its buffer fell to
LOW_BUFFERED. The platform subclass sends chunks, applies the peer's signals and releases the connection; it
calls `channel_opened`, `chunk_received`, `writable` and `closed` as its channel reports them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from py_shared.protocol.chunks import ChunkError, Reassembler, split_frame
from py_shared.protocol.transport import ConnectionClosed, QueuedTransport

log = logging.getLogger("pydisco.rtc")

SendSignal = Callable[[str, str], Awaitable[None]]
CHANNEL_LABEL = "pydisco"
MAX_BUFFERED = 2**20  # send() waits while more than this waits inside the channel...
LOW_BUFFERED = 256 * 1024  # ...until it fell to this ('bufferedamountlow')
DEFAULT_MAX_FRAME_BYTES = 64 * 2**20


def describe(error: BaseException) -> str:
    """An exception in words, even when it has no message."""
    return str(error) or type(error).__name__


class PeerLink(QueuedTransport):
    """An open (or opening) data channel to one peer: whole frames out with `send`, in with `receive`."""

    def __init__(self, peer_id: str, initiator: bool, max_frame_bytes: int) -> None:
        super().__init__()
        self.peer_id, self.initiator = peer_id, initiator
        self._opened = False
        self._reassembler = Reassembler(max_frame_bytes)
        self._message_id = 0  # of the last frame sent; the peer's Reassembler wants them growing
        self._send_lock = asyncio.Lock()  # one frame's chunks at a time
        self._writable = asyncio.Event()  # the channel's buffer fell low, or the link closed
        self._settled = asyncio.Event()  # the channel opened, or the link closed
        self._signal_task: asyncio.Task[None] | None = None
        self._shutdown: asyncio.Task[None] | None = None

    # what a platform provides

    def _send_chunk(self, chunk: bytes) -> None:
        """Send one chunk on the open channel; ConnectionClosed (after `closed`) if it cannot."""
        raise NotImplementedError

    def _buffered(self) -> int:
        """The bytes waiting inside the channel."""
        raise NotImplementedError

    async def _apply_signal(self, what: str, data: str) -> str | None:
        """Apply an offer, answer or candidate from the peer; returns an answer to send back, if this side makes
        one here. Raises on anything unusable."""
        raise NotImplementedError

    async def _release(self) -> None:
        """Close the channel and the peer connection, and let go of everything they hold."""
        raise NotImplementedError

    def _connection_states(self) -> str:
        """Where the connection got to, in words, for a timeout's message."""
        return "no data channel yet"

    # what the platform calls

    def channel_opened(self) -> None:
        """The data channel is open."""
        if self._close_reason or self._opened:
            return
        self._opened = True
        log.info("peer %s: open", self.peer_id)
        self._settled.set()

    def chunk_received(self, data: bytes | str) -> None:
        """A message arrived on the channel: a chunk, or something that ends the link."""
        if self._close_reason:
            return
        if isinstance(data, str):
            self.closed(f"peer {self.peer_id} sent a text message; PyDisco peers send binary chunks only")
            return
        try:
            frame = self._reassembler.feed(data)
        except ChunkError as e:
            self.closed(f"peer {self.peer_id} sent a malformed chunk: {e}")
            return
        if frame is not None:
            self.deliver(frame)

    def writable(self) -> None:
        """The channel's buffer fell to LOW_BUFFERED."""
        self._writable.set()

    def closed(self, reason: str) -> None:
        """The link ended (safe to call more than once): readers and writers wake up, everything is released."""
        if self._close_reason:
            return
        super().closed(reason)
        log.info("peer %s: %s", self.peer_id, self.state)
        self._writable.set()
        self._settled.set()
        self._shutdown = asyncio.ensure_future(self._stop())

    # the link

    @property
    def state(self) -> str:
        """'connecting', 'open' or 'closed: <reason>'."""
        if self._close_reason:
            return f"closed: {self._close_reason}"
        return "open" if self._opened else "connecting"

    async def send(self, frame: bytes) -> None:
        """Send one whole frame as chunks, pausing while the channel holds more than MAX_BUFFERED bytes."""
        async with self._send_lock:
            self._message_id += 1
            for chunk in split_frame(frame, self._message_id):
                while self._opened and not self._close_reason and self._buffered() > MAX_BUFFERED:
                    self._writable.clear()
                    await self._writable.wait()
                if self._close_reason:
                    raise ConnectionClosed(self._close_reason)
                if not self._opened:
                    raise ConnectionClosed(f"the data channel to peer {self.peer_id} is not open")
                self._send_chunk(chunk)

    async def close(self) -> None:
        """Close the channel and the peer connection (idempotent)."""
        self.closed("closed by this side")
        if self._shutdown is not None:
            await asyncio.shield(self._shutdown)

    async def _stop(self) -> None:
        if self._signal_task is not None and self._signal_task is not asyncio.current_task():
            self._signal_task.cancel()
        try:
            await self._release()
        except Exception as e:  # closing must not fail the caller; say what happened
            log.warning("peer %s: closing the connection failed: %s", self.peer_id, describe(e))

    async def _read_signals(self, signals: asyncio.Queue[tuple[str, str]], send_signal: SendSignal) -> None:
        """Apply what the peer sends through the signaling server until the link closes."""
        while not self._close_reason:
            what, data = await signals.get()
            try:
                answer = await self._apply_signal(what, data)
            except Exception as e:  # whatever the platform cannot take from this peer ends the link
                self.closed(f"peer {self.peer_id} sent a bad {what!r} signal: {describe(e)}")
                return
            if answer is not None:
                try:
                    await send_signal("answer", answer)
                except Exception as e:
                    self.closed(f"cannot send the answer to peer {self.peer_id}: {describe(e)}")
                    return

    async def establish(
        self,
        start: Callable[[], Awaitable[None]],
        signals: asyncio.Queue[tuple[str, str]],
        send_signal: SendSignal,
        timeout_s: float,
    ) -> None:
        """Run `start` (the initiator's offer), then apply the peer's signals until the channel opens. Raises
        TimeoutError when it is not open within `timeout_s`, ConnectionClosed when the peer's signals are
        unusable or the connection fails; either way after closing what was created."""
        log.info("peer %s: connecting (%s)", self.peer_id, "offering" if self.initiator else "waiting for an offer")
        try:
            async with asyncio.timeout(timeout_s) as deadline:
                await start()
                self._signal_task = asyncio.ensure_future(self._read_signals(signals, send_signal))
                await self._settled.wait()
        except TimeoutError:
            if not deadline.expired():  # a TimeoutError from send_signal
                await self.close()
                raise
            states = self._connection_states()
            self.closed(f"no data channel to peer {self.peer_id} within {timeout_s:g} s ({states})")
            await self.close()
            raise TimeoutError(self._close_reason) from None
        except BaseException:
            await self.close()
            raise
        if self._close_reason:
            await self.close()
            raise ConnectionClosed(self._close_reason)
