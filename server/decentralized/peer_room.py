"""One decentralized task's live state on the server: who is connected, who is ready, and the round's exchange.

The server never holds a weight here. It paces rounds: once at least min_participants peers are ready and either
every connected peer is or the task's round deadline (from the first ready) has passed, it sends each ready peer
the round's members and its neighbours (mesh: everyone else; ring: the members before and after it; gossip: a
random regular graph drawn for the round), relays WebRTC signaling between neighbours of the round and nothing
else, and collects from each member the list of models it holds. When all have reported or the exchange timeout
has passed, the round's included models are, in a mesh, the largest set of reporting members that all hold each
other's models (common_models), on a ring those that the one average which went round sums; each is told
(RoundFinal) and ends the round with the same model. Gossiping, every member that reported is included and each
averages the included models it holds: the models agree only after several rounds.
A peer that joins after round 0 has no current model: it is a listener for its first exchange (it receives the
members' models and sends none) and becomes a member once it held every included model of a round; a peer whose
Ready says it lacks the model listens again. Secure rounds: every member learns the weight base (the most samples
of a member), a secure ring's members are linked to every member (for keys and shares; the sums still go round),
a mesh includes nothing below the sharing threshold, and listeners get the round's model after the decision.
Should every peer holding the common model leave, the models of those still there are averaged into a new one.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from py_shared.protocol.messages import GlobalModel, Message, ProtocolError, RoundInfo, encode_message
from py_shared.protocol.peer_messages import IceServer, PeerWelcome, Ready, Received, RoundFinal, RoundPeers, Signal
from py_shared.secure.graph import mask_graph, suggested_degree, threshold
from py_shared.task import TaskDefinition, Topology
from server.federation.room import Participant

log = logging.getLogger("pydisco.decentralized")
SIGNALING_FRAME_BYTES = 64 * 1024  # the largest frame a peer sends here: a Signal's SDP fits with room to spare
REPORT_GRACE_S = 5.0  # peers report when their exchange timeout ends: the server waits this much longer


@dataclass
class Exchange:
    """One round's exchange: its members (whose models count), listeners, and what each reported holding."""

    round: int
    topology: Topology
    members: tuple[str, ...]
    listeners: tuple[str, ...]
    secure: bool = False
    min_included: int = 1  # secure: below the sharing threshold, the included members' shares rebuild nothing
    graph: dict[str, frozenset[str]] = field(default_factory=dict)  # gossip: this round's members' neighbours
    reports: dict[str, frozenset[str]] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None

    def neighbours(self, peer: str) -> tuple[str, ...]:
        """Mesh: a member is linked to every other member and every listener, a listener to every member.
        Ring: a member to the members before and after it (secure: to every member, for the key material), the
        last one also to every listener. Gossip: a member
        to its neighbours in this round's graph and to every listener, a listener to every member."""
        if self.topology == "ring" and not (self.secure and peer in self.members):
            return self._ring_neighbours(peer)
        if peer in self.listeners:
            return self.members
        if peer in self.graph:
            return tuple(sorted(self.graph[peer])) + self.listeners
        if peer in self.members:
            return tuple(p for p in (*self.members, *self.listeners) if p != peer)
        return ()

    def _ring_neighbours(self, peer: str) -> tuple[str, ...]:
        members, n = self.members, len(self.members)
        if peer in self.listeners:
            return members[-1:]
        if peer not in members:
            return ()
        k = members.index(peer)
        around = {members[(k - 1) % n], members[(k + 1) % n]} - {peer}
        return tuple(sorted(around)) + (self.listeners if peer == members[-1] else ())

    def included(self, reports: dict[str, frozenset[str]]) -> tuple[str, ...]:
        """The models the round includes, from what the members still here report holding."""
        if self.topology == "ring":
            # a member reports whose models the average it holds sums: one average was computed, or none
            held = {r for r in reports.values() if r}
            return tuple(p for p in self.members if p in next(iter(held))) if len(held) == 1 else ()
        if self.topology == "gossip":
            return tuple(p for p in self.members if p in reports)  # each averages what it has of these
        included = common_models(self.members, reports)
        return included if len(included) >= min(self.min_included, len(self.members)) else ()

    def holds_the_model(self, peer: str, report: frozenset[str], included: tuple[str, ...]) -> bool:
        """Whether a peer that reported `report` ends the round with the round's model (or, gossiping, with an
        average of some included models). A secure round's listeners get it after the decision: each says in its
        next Ready whether it did."""
        if self.secure and peer in self.listeners:
            return bool(included)
        return bool(report & set(included)) if self.topology == "gossip" else set(included) <= report


def common_models(members: tuple[str, ...], reports: dict[str, frozenset[str]]) -> tuple[str, ...]:
    """The largest set of reporting members each of which holds every other's model, found greedily: while some
    member lacks a model of the set, drop the one with the most gaps either way (lacking, or lacked by others),
    then the one fewer hold. So one peer that received nothing, or that nobody could read, costs its own model
    only, not the round."""
    chosen = [p for p in members if p in reports]

    def gaps(p: str) -> tuple[int, int, str]:
        lacks = sum(q not in reports[p] for q in chosen)
        lacked_by = sum(p not in reports[q] for q in chosen)
        return lacks + lacked_by, lacked_by, p

    while chosen and any(gaps(p)[0] for p in chosen):
        chosen.remove(max(chosen, key=gaps))
    return tuple(chosen)


class PeerRoom:
    """The signaling and pacing state of one decentralized task; every method runs on the server's event loop."""

    def __init__(self, task: TaskDefinition, ice_servers: tuple[IceServer, ...] = (), initial: bytes = b"") -> None:
        self.task, self.ice_servers = task, ice_servers
        # the task's seeded initial model, drawn once here: peers on different devices draw it with different
        # rounding, and a secure round needs one common start to the bit
        self.initial = initial
        self.participants: dict[str, Participant] = {}
        self.synced: set[str] = set()  # peers holding the current model (everyone, before round 0 ends)
        self.round = 0
        self.ready: dict[str, int] = {}  # peer -> samples, for `round`
        self.exchange: Exchange | None = None
        self.pacing: asyncio.TimerHandle | None = None
        self.deadline_passed = False

    @property
    def max_frame_bytes(self) -> int:
        """Peers send the server signaling only: no model, no payload."""
        return SIGNALING_FRAME_BYTES

    def info(self) -> RoundInfo:
        """The round's state as broadcast to peers; `updates` counts the peers ready for it."""
        n, minimum = len(self.participants), self.task.min_participants
        return RoundInfo(round=self.round, participants=n, min_participants=minimum, updates=len(self.ready),
                         waiting=n < minimum)  # fmt: skip

    def _news(self) -> None:
        frame = encode_message(self.info())
        for p in list(self.participants.values()):
            p.news(frame)

    def _tell(self, peer: str, message: Message) -> None:
        if (p := self.participants.get(peer)) is not None:
            p.send(encode_message(message))

    async def join(self, participant: Participant) -> None:
        """Admit a peer: its id, the round it trains for next, and the ICE servers to reach the others."""
        self.participants[participant.id] = participant
        first = self.round == 0 and self.exchange is None
        if first:
            self.synced.add(participant.id)  # everyone starts from the task's seeded initial model
        n = len(self.participants)
        log.info("task %s: peer %s (%s) joined (%d peers)", self.task.id, participant.id, participant.name, n)
        welcome = PeerWelcome(peer_id=participant.id, round=self.round, participants=n,
                              min_participants=self.task.min_participants, ice_servers=self.ice_servers,
                              initial_model=first and bool(self.initial))  # fmt: skip
        participant.send(encode_message(welcome))
        if welcome.initial_model:
            participant.send(encode_message(GlobalModel(round=0), self.initial))
        self._news()

    async def leave(self, participant_id: str) -> None:
        """Forget a peer; a round no longer waits for it, and its exchange goes on without it."""
        if self.participants.pop(participant_id, None) is None:
            return
        self.synced.discard(participant_id)
        self.ready.pop(participant_id, None)
        log.info("task %s: peer %s left (%d peers)", self.task.id, participant_id, len(self.participants))
        if self.exchange is not None:
            self._maybe_finish()
        else:
            self._maybe_start()
        self._news()

    async def handle(self, participant_id: str, message: Message, payload: bytes) -> None:
        """A joined peer's message: Ready, Signal or Received; anything else is refused."""
        if isinstance(message, Ready):
            self._ready(participant_id, message)
        elif isinstance(message, Signal):
            self._relay(participant_id, message)
        elif isinstance(message, Received):
            self._received(participant_id, message)
        else:
            raise ProtocolError("unexpected", f"a peer does not send {message.kind!r} messages to the server")

    def _ready(self, peer: str, message: Ready) -> None:
        if message.round != self.round or self.exchange is not None:
            busy = " and its exchange is under way" if self.exchange is not None else ""
            raise ProtocolError("stale_round", f"ready for round {message.round}; the round is {self.round}{busy}")
        self.ready[peer] = message.samples
        if not message.has_model:
            self.synced.discard(peer)  # it missed the last round's model (a secure round's unmasking, say)
        self._maybe_start()
        self._news()

    def _maybe_start(self) -> None:
        if not self.synced & set(self.participants):
            # nobody connected holds the common model any more: the next average of everyone's becomes it
            self.synced = set(self.participants)
        members = [p for p in self.ready if p in self.synced]
        # listeners count: they train too, and one that can never catch up must not stall the task
        if not members or len(self.ready) < self.task.min_participants:
            return
        everyone = all(p in self.ready for p in self.participants)
        deadline = self.task.federation.round_deadline_s
        if not everyone and not self.deadline_passed:
            if deadline > 0 and self.pacing is None:
                self.pacing = asyncio.get_running_loop().call_later(deadline, self._deadline_hit, self.round)
            return
        self._start(tuple(sorted(members)), tuple(sorted(p for p in self.ready if p not in self.synced)))

    def _deadline_hit(self, round_: int) -> None:
        self.pacing = None
        if round_ == self.round and self.exchange is None:
            self.deadline_passed = True
            self._maybe_start()

    def _start(self, members: tuple[str, ...], listeners: tuple[str, ...]) -> None:
        if self.pacing is not None:
            self.pacing.cancel()
            self.pacing = None
        settings, task = self.task.decentralized, self.task
        exchange = Exchange(self.round, settings.topology, members, listeners, task.secure_aggregation)
        if task.secure_aggregation and task.secure.graph == "complete":
            exchange.min_included = threshold(task.secure.threshold, len(members) - 1)
        if settings.topology == "gossip":
            order = list(members)
            random.shuffle(order)  # a new graph every round mixes faster than any fixed one
            by_position = mask_graph(range(len(order)), settings.gossip_degree or suggested_degree(len(order)))
            exchange.graph = {order[i]: frozenset(order[j] for j in around) for i, around in by_position.items()}
        timeout = self.task.decentralized.exchange_timeout_s + REPORT_GRACE_S
        exchange.timer = asyncio.get_running_loop().call_later(timeout, self._exchange_timeout, self.round)
        self.exchange = exchange
        weight_base = max(self.ready[p] for p in members)
        log.info("task %s: round %d exchange: %d members, %d listeners", self.task.id, self.round, len(members),
                 len(listeners))  # fmt: skip
        for peer in (*members, *listeners):
            self._tell(peer, RoundPeers(round=self.round, members=members, neighbours=exchange.neighbours(peer),
                                        weight_base=weight_base))  # fmt: skip

    def _relay(self, sender: str, message: Signal) -> None:
        exchange = self.exchange
        if exchange is None or message.round != exchange.round:
            raise ProtocolError("stale_round", f"signaling for round {message.round}, which has no exchange now")
        if sender not in exchange.neighbours(message.peer) or message.peer not in self.participants:
            raise ProtocolError("unexpected", f"peer {message.peer!r} is not your neighbour in round {message.round}")
        self._tell(message.peer, Signal(round=message.round, peer=sender, what=message.what, data=message.data))

    def _received(self, peer: str, message: Received) -> None:
        exchange = self.exchange
        if exchange is None or message.round != exchange.round:
            raise ProtocolError("stale_round", f"a report for round {message.round}, which has no exchange now")
        if peer not in exchange.members and peer not in exchange.listeners:
            raise ProtocolError("unexpected", f"you are not in round {message.round}'s exchange")
        if peer in exchange.reports:
            raise ProtocolError("duplicate_update", f"round {message.round}'s report was already received")
        unknown = set(message.peers) - set(exchange.members)
        if unknown:
            raise ProtocolError("bad_message", f"peers: {sorted(unknown)} are not members of round {message.round}")
        exchange.reports[peer] = frozenset(message.peers)
        self._maybe_finish()

    def _exchange_timeout(self, round_: int) -> None:
        if self.exchange is not None and self.exchange.round == round_:
            log.warning("task %s: round %d's exchange timed out", self.task.id, round_)
            self._finish()

    def _maybe_finish(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            present = [p for p in (*exchange.members, *exchange.listeners) if p in self.participants]
            if all(p in exchange.reports for p in present):
                self._finish()

    def _finish(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        if exchange.timer is not None:
            exchange.timer.cancel()
        reports = {p: exchange.reports[p] for p in exchange.members if p in exchange.reports and p in self.participants}
        included = exchange.included(reports)
        log.info("task %s: round %d closed: %d of %d members' models included", self.task.id, exchange.round,
                 len(included), len(exchange.members))  # fmt: skip
        final = RoundFinal(round=exchange.round, included=included)
        synced = set()
        for p in (*exchange.members, *exchange.listeners):
            if (report := exchange.reports.get(p)) is not None and p in self.participants:
                self._tell(p, final)  # with nothing included, each goes back to the model it started the round from
                if exchange.holds_the_model(p, report, included):
                    synced.add(p)
        if included:
            # who did not report, or lacks an included model, no longer holds the common model: it listens next
            self.synced = synced
        self.exchange, self.ready, self.deadline_passed = None, {}, False
        self.round += 1
        self._news()
