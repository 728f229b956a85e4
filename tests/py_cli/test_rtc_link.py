"""RtcLink on real aiortc: two peers in one event loop, their signaling carried by two asyncio queues."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable

import pytest

from py_cli.rtc_link import RtcLink, open_link
from py_shared.protocol.chunks import CHUNK_BYTES, split_frame
from py_shared.protocol.peer_link import MAX_BUFFERED
from py_shared.protocol.transport import ConnectionClosed

Signals = asyncio.Queue[tuple[str, str]]
Rewrite = Callable[[str, str], list[tuple[str, str]]]


def forward(queue: Signals, rewrite: Rewrite | None = None) -> Callable[[str, str], Awaitable[None]]:
    """A send_signal that puts what it sends (rewritten, if asked) on the other peer's queue."""

    async def send_signal(what: str, data: str) -> None:
        for signal in rewrite(what, data) if rewrite else [(what, data)]:
            await queue.put(signal)

    return send_signal


async def connect_pair(
    max_frame_bytes: int = 64 * 2**20, rewrite_offer: Rewrite | None = None
) -> tuple[RtcLink, RtcLink, float]:
    """Links a (to peer "b", the initiator) and b (to peer "a"), and how long opening took."""
    to_a: Signals = asyncio.Queue()
    to_b: Signals = asyncio.Queue()
    started = time.perf_counter()
    a, b = await asyncio.gather(
        open_link("b", True, forward(to_b, rewrite_offer), to_a, timeout_s=10, max_frame_bytes=max_frame_bytes),
        open_link("a", False, forward(to_a), to_b, timeout_s=10, max_frame_bytes=max_frame_bytes),
    )
    return a, b, time.perf_counter() - started


async def transfer(sender: RtcLink, receiver: RtcLink, frame: bytes) -> tuple[bytes, float]:
    started = time.perf_counter()
    _, received = await asyncio.gather(sender.send(frame), receiver.receive())
    return received, time.perf_counter() - started


def test_frames_go_both_ways_whole_and_in_order() -> None:
    peak = [0]

    async def watch_buffered(link: RtcLink) -> None:
        """Note the most bytes ever waiting inside the channel, at every turn of the event loop."""
        peak[0] = 0
        while link.channel is not None:
            peak[0] = max(peak[0], link.channel.bufferedAmount)
            await asyncio.sleep(0)

    async def main() -> None:
        a, b, open_s = await connect_pair()
        print(f"\ndata channel open in {open_s:.3f} s")
        assert (a.state, b.state) == ("open", "open")
        assert a.channel is not None and a.channel.label == "pydisco" and a.channel.ordered

        for name, sender, receiver in (("a -> b", a, b), ("b -> a", b, a)):
            frame = os.urandom(3_000_000)
            most_buffered = asyncio.ensure_future(watch_buffered(sender))
            received, seconds = await transfer(sender, receiver, frame)
            most_buffered.cancel()
            assert received == frame
            print(
                f"3 MB {name}: {seconds:.2f} s, {len(frame) / seconds / 1e6:.2f} MB/s, at most {peak[0]} bytes buffered"
            )
            assert MAX_BUFFERED < peak[0] <= MAX_BUFFERED + CHUNK_BYTES  # send waited, and not in vain

        small = [f"frame {i}".encode() for i in range(300)]
        await asyncio.gather(*(a.send(f) for f in small), *(b.send(f) for f in small[:50]))
        assert [await b.receive() for _ in small] == small
        assert [await a.receive() for _ in small[:50]] == small[:50]
        assert a.poll() is None and b.poll() is None

        # two large frames sent at once do not interleave their chunks
        x, y = os.urandom(200_000), os.urandom(300_000)
        await asyncio.gather(a.send(x), a.send(y))
        assert [await b.receive(), await b.receive()] == [x, y]

        await a.close()
        await b.close()

    asyncio.run(main())


def test_a_malformed_chunk_closes_the_link() -> None:
    async def main() -> None:
        a, b, _ = await connect_pair()
        await a.send(b"fine")
        assert a.channel is not None
        a.channel.send(b"garbage")
        assert await b.receive() == b"fine"  # what came whole before the garbage is still there
        with pytest.raises(ConnectionClosed, match="peer a sent a malformed chunk: a chunk has at least 12 bytes"):
            await b.receive()
        assert b.state.startswith("closed: peer a sent a malformed chunk")
        with pytest.raises(ConnectionClosed):  # b closed its connection, so a's ends too
            await asyncio.wait_for(a.receive(), 5)
        await a.close()
        await b.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (split_frame(b"x" * 10, 1, chunk_bytes=16)[1], "message 1 starts with chunk 1, not chunk 0"),
        ("text", "peer a sent a text message"),
    ],
)
def test_chunks_out_of_place_or_text_close_the_link(raw: bytes | str, problem: str) -> None:
    async def main() -> None:
        a, b, _ = await connect_pair()
        assert a.channel is not None
        a.channel.send(raw)
        with pytest.raises(ConnectionClosed, match=problem):
            await asyncio.wait_for(b.receive(), 5)
        await a.close()
        await b.close()

    asyncio.run(main())


def test_a_frame_over_the_receivers_limit_closes_the_link() -> None:
    async def main() -> None:
        a, b, _ = await connect_pair(max_frame_bytes=100_000)
        await a.send(os.urandom(100_000))
        assert len(await b.receive()) == 100_000
        await a.send(os.urandom(100_001))
        with pytest.raises(ConnectionClosed, match="more than the limit of 100000"):
            await asyncio.wait_for(b.receive(), 5)
        await a.close()
        await b.close()

    asyncio.run(main())


def test_a_peer_that_never_answers_times_out() -> None:
    async def main() -> None:
        sent: Signals = asyncio.Queue()
        started = time.perf_counter()
        with pytest.raises(
            TimeoutError, match=r"no data channel to peer silent within 2 s \(signaling have-local-offer"
        ):
            await open_link("silent", True, forward(sent), asyncio.Queue(), timeout_s=2.0)
        elapsed = time.perf_counter() - started
        assert elapsed < 3, elapsed
        what, offer = sent.get_nowait()
        assert what == "offer" and "m=application" in offer
        assert "typ host" in offer and "typ srflx" not in offer  # no STUN server was asked

    asyncio.run(main())


def test_closing_one_side_ends_the_other() -> None:
    async def main() -> None:
        a, b, _ = await connect_pair()
        reading = asyncio.ensure_future(b.receive())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await a.close()
        with pytest.raises(ConnectionClosed, match="to peer a"):
            await asyncio.wait_for(reading, 5)
        print(f"\nthe other side saw the close after {time.perf_counter() - started:.3f} s ({b.state})")
        assert b.state.startswith("closed: ")
        assert a.state == "closed: closed by this side"
        with pytest.raises(ConnectionClosed, match="closed by this side"):
            await a.send(b"too late")
        with pytest.raises(ConnectionClosed):
            await b.send(b"too late")
        await a.close()  # idempotent
        await b.close()
        await b.close()

    asyncio.run(main())


def trickle(what: str, sdp: str) -> list[tuple[str, str]]:
    """Send an offer the way a browser does: without its candidates, which follow one by one."""
    if what != "offer":
        return [(what, sdp)]
    lines = sdp.splitlines()
    candidates = [line.removeprefix("a=") for line in lines if line.startswith("a=candidate:")]
    assert candidates
    bare = "".join(f"{line}\r\n" for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates")))
    mid = next(line.removeprefix("a=mid:") for line in lines if line.startswith("a=mid:"))
    return [
        ("offer", bare),
        *(("candidate", json.dumps({"candidate": c, "sdpMid": mid, "sdpMLineIndex": 0})) for c in candidates),
        ("candidate", json.dumps({"candidate": "", "sdpMid": mid, "sdpMLineIndex": 0})),
    ]


def test_trickled_candidates_are_applied() -> None:
    async def main() -> None:
        trickled: list[str] = []

        def record(what: str, sdp: str) -> list[tuple[str, str]]:
            signals = trickle(what, sdp)
            trickled.extend(json.loads(data)["candidate"] for what, data in signals if what == "candidate")
            return signals

        a, b, _ = await connect_pair(rewrite_offer=record)
        # the link would open without them too (b learns a's address from a's checks), so look at what b knows
        assert b._connection.sctp is not None
        known = {(c.ip, c.port) for c in b._connection.sctp.transport.transport.getRemoteCandidates()}
        sent = {(c.split()[4], int(c.split()[5])) for c in trickled if c}
        assert sent and sent <= known, (sent, known)
        await a.send(b"hello")
        assert await b.receive() == b"hello"
        await a.close()
        await b.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("signals", "problem"),
    [
        ([("offer", "v=0\r\nnonsense")], "peer x sent a bad 'offer' signal: the offer has no data channel section"),
        ([("offer", "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")], "peer x sent a bad 'offer'"),
        ([("answer", "v=0\r\n")], "peer x sent a bad 'answer' signal: this answer was not expected"),
        ([("candidate", "[1]")], "peer x sent a bad 'candidate' signal: a candidate is a JSON object"),
        ([("candidate", '{"candidate": "candidate:1 1 udp", "sdpMid": "0"}')], "cannot read the candidate"),
        ([("candidate", '{"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host"}')], "neither sdpMid nor"),
    ],
)
def test_bad_signals_end_the_link(signals: list[tuple[str, str]], problem: str) -> None:
    async def main() -> None:
        queue: Signals = asyncio.Queue()
        queue.put_nowait(("hello", "an unknown signal is ignored"))
        queue.put_nowait(("candidate", '{"candidate": ""}'))  # the end of candidates is fine
        for signal in signals:
            queue.put_nowait(signal)
        with pytest.raises(ConnectionClosed, match=problem):
            await open_link("x", False, forward(asyncio.Queue()), queue, timeout_s=5)

    asyncio.run(main())
