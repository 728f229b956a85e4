"""ReadGate in-process: large reads wait for a slot, small ones never do, and a stalled holder stops counting.
(The real server's use of it: tests/server/test_endpoint_limits.py, 32 participants sending 3.2 MB at once.)"""

from __future__ import annotations

import asyncio

from server.read_gate import ReadGate

LARGE = 1_000_000


class FakeConnection:
    """Records what the gate told it."""

    def __init__(self, name: str) -> None:
        self.name, self.paused, self.resumes = name, False, 0

    def gate_pause(self) -> None:
        self.paused = True

    def gate_resume(self) -> None:
        self.paused, self.resumes = False, self.resumes + 1


def test_small_messages_never_need_a_slot() -> None:
    async def scenario() -> None:
        gate = ReadGate(slots=1, threshold=1000)
        a, b = FakeConnection("a"), FakeConnection("b")
        assert gate.reading(a, LARGE)
        assert gate.reading(b, 1000)  # a holds the only slot; b's message is small
        assert not b.paused and not gate.holds(b)

    asyncio.run(scenario())


def test_large_reads_wait_in_line_for_a_slot() -> None:
    async def scenario() -> None:
        gate = ReadGate(slots=2, threshold=1000)
        a, b, c, d = (FakeConnection(n) for n in "abcd")
        assert gate.reading(a, LARGE) and gate.reading(b, LARGE)
        assert not gate.reading(c, LARGE) and c.paused
        assert not gate.reading(d, LARGE) and d.paused
        assert not gate.reading(c, LARGE)  # asking again keeps its place, it is not queued twice
        gate.done(a)
        assert gate.holds(c) and not c.paused and c.resumes == 1
        assert d.paused
        gate.done(b)
        assert gate.holds(d) and not d.paused

    asyncio.run(scenario())


def test_a_connection_that_ends_while_waiting_leaves_the_line() -> None:
    async def scenario() -> None:
        gate = ReadGate(slots=1, threshold=1000)
        a, b, c = (FakeConnection(n) for n in "abc")
        gate.reading(a, LARGE)
        gate.reading(b, LARGE)
        gate.reading(c, LARGE)
        gate.done(b)  # its connection was lost: it is never resumed
        gate.done(a)
        assert gate.holds(c) and b.resumes == 0 and not gate.holds(b)

    asyncio.run(scenario())


def test_a_holder_that_receives_nothing_stops_counting() -> None:
    async def scenario() -> None:
        gate = ReadGate(slots=1, threshold=1000, stall_s=0.2)
        trickler, honest = FakeConnection("trickler"), FakeConnection("honest")
        assert gate.reading(trickler, LARGE)
        assert not gate.reading(honest, LARGE)
        await asyncio.sleep(0.05)
        gate.reading(trickler, LARGE + 1)  # a byte arrives: still progressing, still counted
        await asyncio.sleep(0.2)
        assert honest.paused
        await asyncio.sleep(0.4)  # nothing more from the trickler: the honest reader goes ahead without a done()
        assert gate.holds(honest) and not honest.paused
        assert gate.holds(trickler)  # it may finish its message; it just no longer blocks anyone

    asyncio.run(scenario())
