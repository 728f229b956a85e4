"""A peer of a decentralized task: the round logic, over the signaling server's connection and WebRTC links.

After each local round (the Trainer's round_end hook) the peer tells the server it is ready and waits for the
round's members and its neighbours. It opens a link to each neighbour (the lower id offers; the signaling goes
through the server), sends its model to each if it is a member, and takes each member neighbour's model, checked
like an update on the server (length, finite, magnitude). Everything in the exchange has one deadline, the
task's decentralized.exchange_timeout_s: a neighbour that cannot connect, drops, or sends something malformed is
simply missing from what this peer reports having received. The server answers with the models every survivor
holds; the peer averages exactly those (average.py: the same bits on every device) or, if it lacks one or none
are included, goes back to the model it started the round from. A peer that is not a member (it joined late)
listens: it receives the members' models and sends none. Links close once the round is decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Protocol

from py_shared.decentralized.average import weighted_average
from py_shared.federated.client import Refused, Status, StatusCallback
from py_shared.models.base import Model
from py_shared.protocol.messages import (
    Error,
    Join,
    Leave,
    Message,
    ProtocolError,
    RoundInfo,
    decode_message,
    encode_message,
)
from py_shared.protocol.peer_messages import (
    IceServer,
    PeerModel,
    PeerWelcome,
    Ready,
    Received,
    RoundFinal,
    RoundPeers,
    Signal,
)
from py_shared.protocol.transport import Connect, ConnectionClosed, QueuedTransport
from py_shared.protocol.vectors import check_vector_bytes
from py_shared.task import TaskDefinition
from py_shared.weights import bytes_to_vector, get_vector, set_vector, vector_size, vector_to_bytes

log = logging.getLogger("pydisco.decentralized")
SendSignal = Callable[[str, str], Awaitable[None]]
DECISION_GRACE_S = 30.0  # how long after its own report a peer waits for the server's decision


class OpenLink(Protocol):
    """The platform's way to open a WebRTC data channel to one peer (py_cli.rtc_link.open_link on CPython)."""

    async def __call__(
        self,
        peer_id: str,
        initiator: bool,
        send_signal: SendSignal,
        signals: asyncio.Queue[tuple[str, str]],
        ice_servers: Sequence[IceServer] = (),
        timeout_s: float = 20.0,
    ) -> QueuedTransport: ...


class DecentralizedPeer:
    """One peer of a decentralized task; `round_end` is the Trainer's hook."""

    def __init__(
        self,
        task: TaskDefinition,
        model: Model,
        samples: int,
        connect: Connect,
        open_link: OpenLink,
        *,
        name: str = "",
        token: str = "",
        on_status: StatusCallback | None = None,
    ) -> None:
        if task.scheme != "decentralized":
            raise ValueError(f"task {task.id!r} is {task.scheme}, not decentralized")
        if task.secure_aggregation:
            raise Refused("secure aggregation between peers is not built yet: this peer would send its model in clear")
        self.task, self.model, self.samples, self.connect, self.open_link = task, model, samples, connect, open_link
        self.name, self.token, self.on_status = name, token, on_status
        self.server: QueuedTransport | None = None
        self.peer_id = ""
        self.round = 0
        self.ice_servers: tuple[IceServer, ...] = ()
        self.status = Status("connecting")
        self.links: dict[str, str] = {}  # neighbour -> its link's state in words, for the status line
        self.common: bytes | None = None  # the model every member started this round from
        self.on_new_global: Callable[[], None] | None = None

    def _report(self, **changes: object) -> None:
        self.status = replace(self.status, **changes)  # type: ignore[arg-type]
        if self.on_status:
            self.on_status(self.status)

    def _link_state(self, peer: str, state: str) -> None:
        self.links[peer] = state
        words = ", ".join(f"{p} {s}" for p, s in sorted(self.links.items()))
        self._report(detail=f"round {self.round}: {words}")

    async def start(self) -> None:
        """Connect to the signaling server and join; the welcome says which round to train for."""
        self.server = await self.connect()
        join = Join(task_id=self.task.id, samples=self.samples, client_name=self.name, token=self.token)
        await self.server.send(encode_message(join))
        welcome = await self._next(PeerWelcome)
        assert isinstance(welcome, PeerWelcome)
        self.peer_id, self.round, self.ice_servers = welcome.peer_id, welcome.round, welcome.ice_servers
        if self.round == 0:  # the task's seeded initial model; a later joiner has no common model until it listened
            self.common = vector_to_bytes(get_vector(self.model))
        self._report(state="training", round=self.round, participants=welcome.participants,
                     min_participants=welcome.min_participants)  # fmt: skip

    async def leave(self) -> None:
        """Tell the server this peer is done, and close the connection."""
        if self.server is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.server.send(encode_message(Leave()))
            await self.server.close()
        self._report(state="left")

    async def round_end(self, local_round: int) -> None:
        """Exchange models with the round's neighbours and continue from their average (the Trainer's hook)."""
        trained = vector_to_bytes(get_vector(self.model))
        peers = await self._round_peers()
        member = self.peer_id in peers.members
        held: dict[str, tuple[bytes, int]] = {self.peer_id: (trained, self.samples)} if member else {}
        self._report(state="aggregating", participants=len(peers.members))
        decision = await self._exchange(peers, trained if member else None, held)
        if decision.included and all(p in held for p in decision.included):
            self._load(weighted_average([held[p] for p in decision.included]))
            log.info("round %d: averaged %d models", self.round, len(decision.included))
        elif self.common is not None and not decision.included:
            self._load(self.common)  # nothing included: every member goes back to the round's common start
            log.warning("round %d: no model was included; back to the round's start", self.round)
        else:
            self.common = None  # this peer lacks an included model: the server makes it listen next round
            log.warning("round %d: missing an included model; listening next round", self.round)
        self.round += 1
        self.links = {}
        self._report(state="training", round=self.round, detail="")
        if self.on_new_global:
            self.on_new_global()

    async def _round_peers(self) -> RoundPeers:
        """Say we are ready and wait for the round's peers. Should the round's exchange have begun without us (we
        joined or came back while it started), wait for the next round and be ready for that one instead."""
        server = self._server()
        await server.send(encode_message(Ready(round=self.round, samples=self.samples)))
        self._report(state="waiting", detail=f"waiting for the peers of round {self.round}")
        missed = False
        while True:
            message = self._handle(await server.receive())
            if isinstance(message, RoundPeers) and message.round == self.round:
                return message
            if isinstance(message, Error) and message.code == "stale_round":
                missed = True
            elif isinstance(message, RoundInfo) and missed and message.round > self.round:
                log.info("round %d began without us: ready for round %d", self.round, message.round)
                self.round, self.common, missed = message.round, None, False
                await server.send(encode_message(Ready(round=self.round, samples=self.samples)))

    def _load(self, vector: bytes) -> None:
        set_vector(self.model, bytes_to_vector(vector, self.model.parameters()[0].device).realize())
        self.common = vector

    async def _exchange(self, peers: RoundPeers, mine: bytes | None, held: dict[str, tuple[bytes, int]]) -> RoundFinal:
        """Run the round's links until done or the deadline, report what arrived, and return the server's decision."""
        server = self._server()
        signals = {n: asyncio.Queue[tuple[str, str]]() for n in peers.neighbours}
        links: list[QueuedTransport] = []
        decided: asyncio.Future[RoundFinal] = asyncio.get_running_loop().create_future()
        reader = asyncio.ensure_future(self._read_server(signals, decided))
        transfers = {
            n: asyncio.ensure_future(self._with_neighbour(n, n in peers.members, mine, signals[n], held, links))
            for n in peers.neighbours
        }
        timeout = self.task.decentralized.exchange_timeout_s
        try:
            if transfers:
                await asyncio.wait(transfers.values(), timeout=timeout)
            for n, t in transfers.items():
                if not t.done():
                    t.cancel()
                    log.warning("round %d: peer %s left out: not done within %g s", self.round, n, timeout)
                    self._link_state(n, f"left out (not done within {timeout:g} s)")
            await server.send(encode_message(Received(round=self.round, peers=tuple(sorted(held)))))
            return await asyncio.wait_for(asyncio.shield(decided), DECISION_GRACE_S)
        except TimeoutError:
            raise ConnectionClosed(f"the server decided nothing about round {self.round}") from None
        finally:
            reader.cancel()
            for link in links:
                await link.close()

    async def _with_neighbour(
        self,
        peer: str,
        is_member: bool,
        mine: bytes | None,
        signals: asyncio.Queue[tuple[str, str]],
        held: dict[str, tuple[bytes, int]],
        links: list[QueuedTransport],
    ) -> None:
        """Connect to one neighbour, send it our model (if we are a member), take its model (if it is one)."""
        server, round_ = self._server(), self.round

        async def send_signal(what: str, data: str) -> None:
            await server.send(encode_message(Signal(round=round_, peer=peer, what=what, data=data)))  # type: ignore[arg-type]

        self._link_state(peer, "connecting")
        try:
            link = await self.open_link(peer, self.peer_id < peer, send_signal, signals, self.ice_servers,
                                        self.task.decentralized.exchange_timeout_s)  # fmt: skip
            links.append(link)
            self._link_state(peer, "connected")
            sending = None
            if mine is not None:
                frame = encode_message(PeerModel(round=round_, samples=self.samples), mine)
                sending = asyncio.ensure_future(link.send(frame))
            if is_member:
                held[peer] = self._checked_model(peer, await link.receive())
                self._link_state(peer, "model received")
            if sending is not None:
                await sending
                self._link_state(peer, "model exchanged" if is_member else "model sent")
        except (ConnectionClosed, TimeoutError, ProtocolError) as e:
            log.warning("round %d: peer %s left out: %s", round_, peer, e)
            self._link_state(peer, f"left out ({e})")

    def _checked_model(self, peer: str, frame: bytes) -> tuple[bytes, int]:
        message, payload = decode_message(frame, 4 * vector_size(self.model) + 64 * 1024)
        if not isinstance(message, PeerModel) or message.round != self.round:
            raise ProtocolError("unexpected", f"peer {peer} sent a {message.kind} message, not its round's model")
        check_vector_bytes(payload, vector_size(self.model))
        return payload, message.samples

    async def _read_server(
        self, signals: dict[str, asyncio.Queue[tuple[str, str]]], decided: asyncio.Future[RoundFinal]
    ) -> None:
        """Route the server's messages during an exchange: signaling to its link, the decision (or the failure
        of the server's connection) to `decided`."""
        try:
            while True:
                message = self._handle(await self._server().receive())
                if isinstance(message, Signal) and message.peer in signals and message.round == self.round:
                    signals[message.peer].put_nowait((message.what, message.data))
                elif isinstance(message, RoundFinal) and message.round == self.round and not decided.done():
                    decided.set_result(message)
        except (ConnectionClosed, Refused) as e:
            if not decided.done():
                decided.set_exception(e)

    async def _next(self, kind: type) -> Message:
        """The next message of `kind` from the server, acting on whatever comes before it."""
        while not isinstance(message := self._handle(await self._server().receive()), kind):
            pass
        return message

    def _handle(self, frame: bytes) -> Message:
        try:
            message, _ = decode_message(frame)
        except ProtocolError as e:
            raise Refused(f"the server sent something unreadable: {e}") from None
        if isinstance(message, RoundInfo):
            self._report(participants=message.participants, min_participants=message.min_participants)
        elif isinstance(message, Error):
            if message.fatal:
                raise Refused(f"the server refused this peer: {message.message}")
            log.warning("server: %s (%s)", message.message, message.code)
            self._report(detail=message.message)
        return message

    def _server(self) -> QueuedTransport:
        if self.server is None:
            raise RuntimeError("not connected: call start() first")
        return self.server
