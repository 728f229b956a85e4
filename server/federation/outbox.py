"""One connection's frames on their way out: a bounded queue and the one task that writes them.

The room never waits for a participant's network: it queues a frame and goes on. The writer sends the frames in
order; a participant that falls too many frames behind, or whose connection makes no progress for the send
timeout, is dropped with the reason, so one client that stops reading costs the others nothing. News (the
round's state, sent to everyone whenever someone joins or leaves) is superseded by newer news: a connection holds
at most one pending news frame, so a crowd coming and going costs each participant one frame, not one per
event. Large frames (models) are written a few connections at a time, each until its buffer has drained, which
keeps the copies the transports hold O(model), not O(participants x model).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from server.connection_control import ConnectionControl

LARGE_FRAME = 256 * 1024


class Outbox:
    """Frames queued for one connection; `run` writes them until the connection is dropped or closed."""

    def __init__(
        self,
        write: Callable[[bytes], Awaitable[None]],
        control: ConnectionControl | None,
        large_sends: asyncio.Semaphore,
        max_frames: int,
        timeout_s: float,
    ) -> None:
        self.write, self.control, self.large_sends = write, control, large_sends
        self.max_frames, self.timeout_s = max_frames, timeout_s
        self.frames: deque[bytes | None] = deque()  # None: the pending news goes here
        self.news: bytes | None = None
        self.ready = asyncio.Event()
        self.dropped = asyncio.Event()
        self.reason = ""

    def put(self, frame: bytes) -> None:
        """Queue `frame`; drops the connection instead when it is already `max_frames` behind."""
        self._queue(frame)

    def _queue(self, frame: bytes | None) -> None:
        if self.dropped.is_set():
            return
        if len(self.frames) >= self.max_frames:
            self.drop(f"it fell {self.max_frames} messages behind")
            return
        self.frames.append(frame)
        self.ready.set()

    def put_news(self, frame: bytes) -> None:
        """Queue `frame` as the latest news, replacing news that has not been sent yet."""
        if self.news is None:
            self._queue(None)
        self.news = frame

    def drop(self, reason: str) -> None:
        """Give up on this connection: nothing more is sent, and whoever serves it is told through `dropped`."""
        if not self.dropped.is_set():
            self.reason = reason
            self.frames.clear()
            self.news = None
            self.dropped.set()

    async def _written(self, frame: bytes) -> None:
        await self.write(frame)
        if self.control is not None:
            await self.control.drained()

    async def _send(self, frame: bytes) -> None:
        """Write one frame; the timeout counts from when this connection's turn came, not from the queue."""
        if len(frame) < LARGE_FRAME:
            await asyncio.wait_for(self._written(frame), self.timeout_s)
            return
        async with self.large_sends:
            await asyncio.wait_for(self._written(frame), self.timeout_s)

    async def run(self) -> None:
        """Write queued frames in order until dropped; a send that fails or stalls drops the connection."""
        while not self.dropped.is_set():
            await self.ready.wait()
            self.ready.clear()
            while self.frames and not self.dropped.is_set():
                frame = self.frames.popleft()
                if frame is None:
                    frame, self.news = self.news, None
                    if frame is None:  # dropped meanwhile
                        continue
                try:
                    await self._send(frame)
                except TimeoutError:
                    self.drop(f"it read nothing for {self.timeout_s:g} s")
                except Exception as e:  # the connection is gone; its reader will notice too
                    self.drop(f"the connection failed: {e}")
