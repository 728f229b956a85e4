"""How many connections may be reading a large message at once, over the whole server.

asyncio reads every socket as fast as data arrives, so when a thousand clients send their update at the same
moment the process holds a thousand partial updates (plus the parser's copies) although the round sums them one
at a time: 1.7 GB for a thousand 0.8 MB updates. A connection whose unparsed input grows past `threshold` must
hold one of `slots` to go on reading; the others stop reading, and their bytes wait in the kernel's socket
buffers, where TCP's flow control slows their senders, until a slot is free. Small messages (joins, news,
pings) never need a slot.

A slot is given back when the app asks for its next message (it has finished with the large one) or when the
connection ends. A holder that has received nothing for `stall_s` (a slow or hostile sender trickling bytes)
stops counting against the limit, so it cannot make the others wait.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol


class Reader(Protocol):
    """A connection the gate can stop and restart."""

    def gate_pause(self) -> None:
        """Stop reading from the socket until `gate_resume`."""

    def gate_resume(self) -> None:
        """Read again: the connection holds a slot now."""


class ReadGate:
    """The slots for reading large messages; one per server process, shared by every connection."""

    def __init__(self, slots: int = 16, threshold: int = 64 * 1024, stall_s: float = 1.0) -> None:
        self.slots, self.threshold, self.stall_s = slots, threshold, stall_s
        self._holders: dict[Reader, float] = {}  # holder -> when it last received bytes
        self._waiting: deque[Reader] = deque()
        self._recheck: asyncio.TimerHandle | None = None

    def reading(self, reader: Reader, unparsed: int) -> bool:
        """`reader` has `unparsed` bytes of an incomplete message: True if it may read on, else it is paused."""
        now = time.monotonic()
        if reader in self._holders:
            self._holders[reader] = now
            return True
        if unparsed <= self.threshold:
            return True
        if reader in self._waiting:
            return False
        if self._active(now) < self.slots:
            self._holders[reader] = now
            return True
        self._waiting.append(reader)
        reader.gate_pause()
        self._schedule_recheck()
        return False

    def done(self, reader: Reader) -> None:
        """`reader` has finished with its message, or its connection ended: its slot goes to the next in line."""
        self._holders.pop(reader, None)
        try:
            self._waiting.remove(reader)
        except ValueError:
            pass
        self._grant()

    def holds(self, reader: Reader) -> bool:
        """Whether `reader` holds a slot."""
        return reader in self._holders

    def _active(self, now: float) -> int:
        return sum(1 for last in self._holders.values() if now - last < self.stall_s)

    def _grant(self) -> None:
        now = time.monotonic()
        while self._waiting and self._active(now) < self.slots:
            reader = self._waiting.popleft()
            self._holders[reader] = now
            reader.gate_resume()
        if self._waiting:
            self._schedule_recheck()

    def _schedule_recheck(self) -> None:
        """Look again once holders may have stalled: nothing else wakes the waiting if no holder finishes."""
        if self._recheck is None:
            self._recheck = asyncio.get_running_loop().call_later(self.stall_s, self._on_recheck)

    def _on_recheck(self) -> None:
        self._recheck = None
        self._grant()
