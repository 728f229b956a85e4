"""PeerRoom in-process: pacing, who is told whom, relaying only within a round, and which models a round includes.
(The same room behind the real server: tests/server/test_decentralized_signaling.py.)"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from py_shared.protocol.messages import GlobalModel, Message, ProtocolError, decode_message
from py_shared.protocol.peer_messages import PeerWelcome, Ready, Received, RoundFinal, RoundPeers, Signal
from py_shared.task import Decentralized, Federation, ImageData, MLPModel, TaskDefinition
from server.decentralized import peer_room
from server.decentralized.peer_room import PeerRoom, common_models
from server.federation.room import Participant

TASK = TaskDefinition(
    id="dec",
    title="dec",
    data=ImageData(width=4, height=4, channels=1, labels=("a", "b")),
    model=MLPModel(hidden=(4,)),
    scheme="decentralized",
    min_participants=2,
    decentralized=Decentralized(exchange_timeout_s=1.0),
)


class Inbox:
    """What one peer was sent."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def add(self, frame: bytes) -> None:
        self.messages.append(decode_message(frame)[0])

    def last(self, kind: type) -> Message:
        found = [m for m in self.messages if isinstance(m, kind)]
        assert found, f"no {kind.__name__} in {self.messages}"
        return found[-1]

    def count(self, kind: type) -> int:
        return sum(isinstance(m, kind) for m in self.messages)


async def joined(room: PeerRoom, *ids: str) -> dict[str, Inbox]:
    inboxes = {}
    for i in ids:
        inbox = Inbox()
        await room.join(Participant(i, i, inbox.add, inbox.add))
        inboxes[i] = inbox
    return inboxes


def test_once_everyone_is_ready_each_hears_the_members_and_its_neighbours() -> None:
    async def scenario() -> None:
        room = PeerRoom(TASK)
        inbox = await joined(room, "c", "a", "b")
        assert isinstance(inbox["a"].last(PeerWelcome), PeerWelcome)
        await room.handle("a", Ready(round=0, samples=5), b"")
        await room.handle("b", Ready(round=0, samples=5), b"")
        assert inbox["a"].count(RoundPeers) == 0  # c is connected and not ready: no deadline, so it is waited for
        await room.handle("c", Ready(round=0, samples=5), b"")
        for peer in "abc":
            peers = inbox[peer].last(RoundPeers)
            assert peers == RoundPeers(
                round=0, members=("a", "b", "c"), neighbours=tuple(p for p in "abc" if p != peer), weight_base=5
            )

    asyncio.run(scenario())


def test_signaling_is_relayed_between_neighbours_of_the_round_only() -> None:
    async def scenario() -> None:
        room = PeerRoom(TASK)
        inbox = await joined(room, "a", "b")
        for p in "ab":
            await room.handle(p, Ready(round=0, samples=1), b"")
        await room.handle("a", Signal(round=0, peer="b", what="offer", data="v=0 sdp"), b"")
        assert inbox["b"].last(Signal) == Signal(round=0, peer="a", what="offer", data="v=0 sdp")  # the sender
        outsider = await joined(room, "x")
        with pytest.raises(ProtocolError, match="not your neighbour"):
            await room.handle("a", Signal(round=0, peer="x", what="offer", data="v=0"), b"")
        with pytest.raises(ProtocolError, match="not your neighbour"):
            await room.handle("x", Signal(round=0, peer="a", what="offer", data="v=0"), b"")
        with pytest.raises(ProtocolError, match="no exchange"):
            await room.handle("a", Signal(round=1, peer="b", what="offer", data="v=0"), b"")
        assert outsider["x"].count(Signal) == 0 and inbox["a"].count(Signal) == 0

    asyncio.run(scenario())


def test_the_round_includes_the_models_every_reporting_member_holds() -> None:
    async def scenario() -> None:
        room = PeerRoom(TASK)
        inbox = await joined(room, "a", "b", "c")
        for p in "abc":
            await room.handle(p, Ready(round=0, samples=1), b"")
        await room.handle("a", Received(round=0, peers=("a", "c")), b"")  # a never got b's model
        await room.handle("b", Received(round=0, peers=("a", "b", "c")), b"")
        assert inbox["a"].count(RoundFinal) == 0
        await room.handle("c", Received(round=0, peers=("a", "b", "c")), b"")
        for p in "abc":
            assert inbox[p].last(RoundFinal) == RoundFinal(round=0, included=("a", "c"))
        assert room.round == 1 and room.synced == {"a", "b", "c"}
        with pytest.raises(ProtocolError, match="no exchange"):
            await room.handle("a", Received(round=0, peers=("a",)), b"")

    asyncio.run(scenario())


def test_a_member_that_leaves_or_never_reports_is_left_out_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peer_room, "REPORT_GRACE_S", 0.2)

    async def scenario() -> None:
        room = PeerRoom(TASK)
        inbox = await joined(room, "a", "b", "c", "d")
        for p in "abcd":
            await room.handle(p, Ready(round=0, samples=1), b"")
        await room.leave("d")  # gone mid-exchange: nobody waits for it
        await room.handle("a", Received(round=0, peers=("a", "b")), b"")
        await room.handle("b", Received(round=0, peers=("a", "b")), b"")
        assert inbox["a"].count(RoundFinal) == 0  # c is still connected: it has until the exchange timeout
        await asyncio.sleep(1.0)
        assert inbox["a"].count(RoundFinal) == 0  # the peers' own exchange timeout, and a grace to report
        await asyncio.sleep(0.4)
        assert inbox["a"].last(RoundFinal) == RoundFinal(round=0, included=("a", "b"))
        assert inbox["c"].count(RoundFinal) == 0
        assert room.synced == {"a", "b"}  # c missed the round: it listens in the next one

    asyncio.run(scenario())


def test_a_peer_joining_after_round_0_listens_first_then_takes_part() -> None:
    async def scenario() -> None:
        room = PeerRoom(TASK)
        inbox = await joined(room, "a", "b")
        for p in "ab":
            await room.handle(p, Ready(round=0, samples=1), b"")
        for p in "ab":
            await room.handle(p, Received(round=0, peers=("a", "b")), b"")
        inbox.update(await joined(room, "n"))
        assert inbox["n"].last(PeerWelcome).round == 1  # type: ignore[attr-defined]
        for p in "abn":
            await room.handle(p, Ready(round=1, samples=1), b"")
        peers = RoundPeers(round=1, members=("a", "b"), neighbours=("a", "b"), weight_base=1)
        assert inbox["n"].last(RoundPeers) == peers
        assert inbox["a"].last(RoundPeers) == replace(peers, neighbours=("b", "n"))
        with pytest.raises(ProtocolError, match="not members"):
            await room.handle("a", Received(round=1, peers=("a", "n")), b"")
        for p in "abn":
            await room.handle(p, Received(round=1, peers=("a", "b")), b"")
        assert inbox["n"].last(RoundFinal) == RoundFinal(round=1, included=("a", "b"))
        assert room.synced == {"a", "b", "n"}  # n held every included model: a member from round 2

    asyncio.run(scenario())


def test_with_a_deadline_the_exchange_starts_without_a_straggler() -> None:
    async def scenario() -> None:
        task = replace(TASK, federation=Federation(round_deadline_s=0.3))
        room = PeerRoom(task)
        inbox = await joined(room, "a", "b", "slow")
        await room.handle("a", Ready(round=0, samples=1), b"")
        await room.handle("b", Ready(round=0, samples=1), b"")
        assert inbox["a"].count(RoundPeers) == 0
        await asyncio.sleep(0.5)
        assert inbox["a"].last(RoundPeers) == RoundPeers(round=0, members=("a", "b"), neighbours=("b",), weight_base=1)
        assert inbox["slow"].count(RoundPeers) == 0
        with pytest.raises(ProtocolError, match="under way"):
            await room.handle("slow", Ready(round=0, samples=1), b"")

    asyncio.run(scenario())


def test_a_peer_sends_the_server_no_model() -> None:
    from py_shared.protocol.peer_messages import PeerModel

    async def scenario() -> None:
        room = PeerRoom(TASK)
        await joined(room, "a")
        with pytest.raises(ProtocolError, match="does not send 'peer_model'"):
            await room.handle("a", PeerModel(round=0, samples=1), b"\0" * 8)
        assert room.max_frame_bytes == 64 * 1024

    asyncio.run(scenario())


def test_when_everyone_holding_the_model_has_left_those_remaining_take_part() -> None:
    async def scenario() -> None:
        room = PeerRoom(TASK)
        await joined(room, "a", "b")
        for p in "ab":
            await room.handle(p, Ready(round=0, samples=1), b"")
        for p in "ab":
            await room.handle(p, Received(round=0, peers=("a", "b")), b"")
        inbox = await joined(room, "m", "n")  # both would be listeners, but nobody is left to listen to
        for p in "ab":
            await room.leave(p)
        for p in "mn":
            await room.handle(p, Ready(round=1, samples=1), b"")
        assert inbox["m"].last(RoundPeers) == RoundPeers(round=1, members=("m", "n"), neighbours=("n",), weight_base=1)

    asyncio.run(scenario())


def test_one_peer_that_holds_nothing_costs_its_own_model_only() -> None:
    members = ("a", "b", "c", "z")
    holds_all = frozenset(("a", "b", "c"))
    reports = {"a": holds_all, "b": holds_all, "c": holds_all, "z": frozenset("z")}  # z could read nobody's model
    assert common_models(members, reports) == ("a", "b", "c")
    assert common_models(members, {"a": frozenset("ab"), "b": frozenset("ab")}) == ("a", "b")  # c, z: no report
    assert common_models(("a", "b"), {"a": frozenset("a"), "b": frozenset("b")}) in {("a",), ("b",)}


def test_a_ring_links_each_member_to_the_members_before_and_after_it() -> None:
    async def scenario() -> None:
        room = PeerRoom(replace(TASK, min_participants=4, decentralized=Decentralized(topology="ring")))
        inbox = await joined(room, "a", "b", "c", "d")
        for p in "abcd":
            await room.handle(p, Ready(round=0, samples=1), b"")
        neighbours = {p: inbox[p].last(RoundPeers).neighbours for p in "abcd"}  # type: ignore[attr-defined]
        assert neighbours == {"a": ("b", "d"), "b": ("a", "c"), "c": ("b", "d"), "d": ("a", "c")}
        with pytest.raises(ProtocolError, match="not your neighbour"):  # a and c are not linked on this ring
            await room.handle("a", Signal(round=0, peer="c", what="offer", data="v=0"), b"")
        for p in "abc":
            await room.handle(p, Received(round=0, peers=tuple("abcd")), b"")
        await room.handle("d", Received(round=0, peers=()), b"")  # the average never reached d
        assert inbox["a"].last(RoundFinal) == RoundFinal(round=0, included=tuple("abcd"))
        assert room.synced == {"a", "b", "c"}

    asyncio.run(scenario())


def test_a_ring_whose_members_hold_different_averages_includes_nothing() -> None:
    async def scenario() -> None:
        room = PeerRoom(replace(TASK, decentralized=Decentralized(topology="ring")))
        inbox = await joined(room, "a", "b", "c")
        for p in "abc":
            await room.handle(p, Ready(round=0, samples=1), b"")
        await room.handle("a", Received(round=0, peers=("a", "b", "c")), b"")
        await room.handle("b", Received(round=0, peers=("a", "b")), b"")  # cannot come from one honest ring
        await room.handle("c", Received(round=0, peers=()), b"")
        assert inbox["c"].last(RoundFinal) == RoundFinal(round=0, included=())

    asyncio.run(scenario())


def test_gossip_draws_a_regular_graph_each_round_and_includes_every_reporter() -> None:
    async def scenario() -> None:
        task = replace(TASK, min_participants=8, decentralized=Decentralized(topology="gossip", gossip_degree=4))
        room = PeerRoom(task)
        names = "abcdefgh"
        inbox = await joined(room, *names)
        for p in names:
            await room.handle(p, Ready(round=0, samples=1), b"")
        graph = {p: set(inbox[p].last(RoundPeers).neighbours) for p in names}  # type: ignore[attr-defined]
        assert all(len(around) == 4 and p not in around for p, around in graph.items())
        assert all(p in graph[q] for p in names for q in graph[p])  # symmetric: who sends to me, I send to
        for p in names[:-1]:
            await room.handle(p, Received(round=0, peers=(p, *sorted(graph[p]))), b"")
        await room.leave("h")  # gone before reporting
        assert inbox["a"].last(RoundFinal) == RoundFinal(round=0, included=tuple(names[:-1]))
        assert room.synced == set(names[:-1])

    asyncio.run(scenario())


SECURE = replace(TASK, secure_aggregation=True, min_participants=4)


async def round_0(room: PeerRoom, peers: str, samples: tuple[int, ...] = ()) -> dict[str, Inbox]:
    inbox = await joined(room, *peers)
    for i, p in enumerate(peers):
        await room.handle(p, Ready(round=0, samples=samples[i] if samples else 1), b"")
    return inbox


def test_a_secure_round_tells_the_weight_base_and_links_a_secure_ring_s_members_to_all() -> None:
    async def scenario() -> None:
        room = PeerRoom(replace(SECURE, decentralized=Decentralized(topology="ring")))
        inbox = await round_0(room, "abcd", (5, 9, 2, 7))
        peers = inbox["a"].last(RoundPeers)
        assert peers == RoundPeers(round=0, members=tuple("abcd"), neighbours=tuple("bcd"), weight_base=9)

    asyncio.run(scenario())


def test_a_secure_mesh_includes_nothing_below_the_sharing_threshold() -> None:
    async def scenario() -> None:
        room = PeerRoom(SECURE)  # 4 members, threshold 2/3: 3 shares rebuild a secret
        inbox = await round_0(room, "abcd")
        for p in "ab":
            await room.handle(p, Received(round=0, peers=("a", "b")), b"")
        for p in "cd":
            await room.handle(p, Received(round=0, peers=(p,)), b"")
        assert inbox["a"].last(RoundFinal) == RoundFinal(round=0, included=())
        assert common_models(tuple("abcd"), {p: frozenset("ab") for p in "ab"}) == ("a", "b")

    asyncio.run(scenario())


def test_a_peer_that_missed_the_round_s_model_listens_and_a_secure_listener_is_trusted_to_catch_up() -> None:
    async def scenario() -> None:
        room = PeerRoom(replace(SECURE, min_participants=3))
        inbox = await round_0(room, "abc")
        for p in "abc":
            await room.handle(p, Received(round=0, peers=tuple("abc")), b"")
        await room.handle("a", Ready(round=1, samples=1), b"")
        await room.handle("b", Ready(round=1, samples=1), b"")
        await room.handle("c", Ready(round=1, samples=1, has_model=False), b"")  # say its unmasking failed
        assert inbox["c"].last(RoundPeers) == RoundPeers(round=1, members=("a", "b"), neighbours=("a", "b"),
                                                         weight_base=1)  # fmt: skip
        for p in "abc":
            await room.handle(p, Received(round=1, peers=("a", "b") if p != "c" else ()), b"")
        # a secure round's listener gets the model after the decision: the server counts on it
        assert room.synced == {"a", "b", "c"}

    asyncio.run(scenario())


def test_peers_joining_before_the_first_exchange_get_the_task_s_initial_model_and_later_ones_do_not() -> None:
    async def scenario() -> None:
        room = PeerRoom(TASK, initial=b"\0" * 8)
        inbox = await joined(room, "a", "b")
        assert inbox["a"].last(PeerWelcome).initial_model  # type: ignore[attr-defined]
        assert inbox["a"].last(GlobalModel) == GlobalModel(round=0)
        for p in "ab":
            await room.handle(p, Ready(round=0, samples=1), b"")
        late = await joined(room, "c")  # round 0's exchange is under way: c listens, it gets no model here
        assert not late["c"].last(PeerWelcome).initial_model  # type: ignore[attr-defined]
        assert late["c"].count(GlobalModel) == 0

    asyncio.run(scenario())
