"""What the round logic needs from a connection, whatever carries it (browser WebSocket, `websockets`, ...).

Platform code subclasses QueuedTransport: it calls `deliver` for each frame received and `closed` when the
connection ends, and implements `send` and `close`; the round logic reads frames in order with `receive`
(waiting) or `poll` (not waiting) so frames that arrive during local training wait in the queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class ConnectionClosed(Exception):
    """The connection ended; the reason is in the message."""


class QueuedTransport:
    """A connection whose received frames wait in a queue until the round logic reads them."""

    def __init__(self) -> None:
        self._frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._close_reason = ""

    def deliver(self, frame: bytes) -> None:
        """Platform code: a frame arrived."""
        self._frames.put_nowait(frame)

    def closed(self, reason: str) -> None:
        """Platform code: the connection ended (safe to call more than once)."""
        if not self._close_reason:
            self._close_reason = reason or "connection closed"
            self._frames.put_nowait(None)

    async def receive(self) -> bytes:
        """The next frame, waiting for it; raises ConnectionClosed once the connection is gone."""
        frame = await self._frames.get()
        if frame is None:
            self._frames.put_nowait(None)  # later calls see the end too
            raise ConnectionClosed(self._close_reason)
        return frame

    def poll(self) -> bytes | None:
        """The next frame if one is waiting, else None; raises ConnectionClosed once the connection is gone."""
        if self._frames.empty():
            return None
        frame = self._frames.get_nowait()
        if frame is None:
            self._frames.put_nowait(None)
            raise ConnectionClosed(self._close_reason)
        return frame

    async def send(self, frame: bytes) -> None:
        """Send one binary frame; raises ConnectionClosed if the connection is gone."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        raise NotImplementedError


Connect = Callable[[], Awaitable[QueuedTransport]]


async def retry_with_backoff(
    attempt: Callable[[], Awaitable[None]],
    on_retry: Callable[[str], None],
    max_attempts: int,
    max_backoff_s: float,
    before_retry: Callable[[], None] = lambda: None,
) -> None:
    """Run `attempt` until it succeeds, waiting 0.5 s, 1 s, 2 s ... (at most `max_backoff_s`) after each
    ConnectionClosed or OSError; `before_retry` may raise to stop (a cancelled client), `on_retry` hears why and
    when; after `max_attempts` failures, raises ConnectionClosed."""
    delay = 0.5
    for number in range(1, max_attempts + 1):
        try:
            await attempt()
            return
        except (ConnectionClosed, OSError) as e:
            before_retry()
            if number == max_attempts:
                raise ConnectionClosed(f"gave up after {number} attempts: {e}") from None
            on_retry(f"{e}; retrying in {delay:.1f} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
