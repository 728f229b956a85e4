"""A connection's outbox in-process: order kept, nobody waits on a slow writer, a stalled or lagging one dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from server.federation.outbox import LARGE_FRAME, Outbox


def outbox(write: Callable[[bytes], Awaitable[None]], max_frames: int = 4, timeout_s: float = 0.2) -> Outbox:
    return Outbox(write, None, asyncio.Semaphore(1), max_frames, timeout_s)


def test_frames_are_written_in_order_and_put_never_waits() -> None:
    written: list[bytes] = []

    async def write(frame: bytes) -> None:
        await asyncio.sleep(0.01)
        written.append(frame)

    async def scenario() -> None:
        box = outbox(write, max_frames=10)
        writer = asyncio.ensure_future(box.run())
        for i in range(5):
            box.put(bytes([i]))  # returns at once: the room goes on
        assert written == []
        while len(written) < 5:
            await asyncio.sleep(0.01)
        assert not box.dropped.is_set()
        writer.cancel()

    asyncio.run(scenario())
    assert written == [bytes([i]) for i in range(5)]


def test_a_connection_that_takes_nothing_is_dropped_after_the_timeout() -> None:
    async def write(frame: bytes) -> None:
        await asyncio.Event().wait()  # the peer stopped reading: the transport never takes the frame

    async def scenario() -> str:
        box = outbox(write, timeout_s=0.1)
        writer = asyncio.ensure_future(box.run())
        box.put(b"model")
        await asyncio.wait_for(box.dropped.wait(), 5)
        writer.cancel()
        return box.reason

    assert "read nothing for 0.1 s" in asyncio.run(scenario())


def test_a_participant_too_far_behind_is_dropped_and_its_backlog_freed() -> None:
    async def write(frame: bytes) -> None:
        await asyncio.Event().wait()

    async def scenario() -> Outbox:
        box = outbox(write, max_frames=3, timeout_s=60)
        writer = asyncio.ensure_future(box.run())
        await asyncio.sleep(0)
        for _ in range(6):
            box.put(b"x")
        writer.cancel()
        return box

    box = asyncio.run(scenario())
    assert box.dropped.is_set() and "3 messages behind" in box.reason and not box.frames


def test_a_stalled_large_send_holds_one_slot_and_others_wait_their_turn_not_their_timeout() -> None:
    """Waiting for a model-send slot does not count against a connection's timeout."""
    big = bytes(LARGE_FRAME)
    done: list[str] = []

    async def slow(frame: bytes) -> None:
        await asyncio.sleep(0.3)
        done.append("slow")

    async def fast(frame: bytes) -> None:
        done.append("fast")

    async def scenario() -> tuple[bool, bool]:
        slots = asyncio.Semaphore(1)
        a = Outbox(slow, None, slots, 4, 1.0)
        b = Outbox(fast, None, slots, 4, 0.1)  # would time out if the wait for a's slot counted
        tasks = [asyncio.ensure_future(box.run()) for box in (a, b)]
        a.put(big)
        await asyncio.sleep(0.01)
        b.put(big)
        while len(done) < 2:
            await asyncio.sleep(0.01)
        for t in tasks:
            t.cancel()
        return a.dropped.is_set(), b.dropped.is_set()

    assert asyncio.run(scenario()) == (False, False)
    assert done == ["slow", "fast"]


def test_news_not_yet_sent_is_replaced_by_newer_news_in_its_place() -> None:
    """A crowd joining and leaving sends everyone the round's state each time; a reader behind gets the latest
    once (before: every event queued a frame, and 64 joins dropped the honest participants as too far behind)."""
    written: list[bytes] = []
    release = asyncio.Event()

    async def write(frame: bytes) -> None:
        await release.wait()
        written.append(frame)

    async def scenario() -> Outbox:
        box = outbox(write, max_frames=4, timeout_s=60)
        writer = asyncio.ensure_future(box.run())
        box.put(b"model")
        await asyncio.sleep(0)
        for i in range(1000):
            box.put_news(b"news %d" % i)
        box.put(b"error")
        release.set()
        while len(written) < 3:
            await asyncio.sleep(0.01)
        writer.cancel()
        return box

    box = asyncio.run(scenario())
    assert not box.dropped.is_set() and written == [b"model", b"news 999", b"error"]
