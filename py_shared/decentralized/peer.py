"""A peer of a decentralized task: the round logic, over the signaling server's connection and WebRTC links.

After each local round (the Trainer's round_end hook) the peer tells the server it is ready and waits for the
round's members and its neighbours. It opens a link to each neighbour (the lower id offers; the signaling goes
through the server) and runs the task's topology (exchange.py: mesh, ring or gossip), every model checked like an
update on the server (length, finite, magnitude). Everything in the exchange has one deadline, the task's
decentralized.exchange_timeout_s: a neighbour that cannot connect, drops, or sends something malformed is simply
missing from what this peer reports holding. The server answers with the models the round includes; the peer
takes their average (mesh and ring: the same bits on every peer; gossip: its own mix) or, if none are included,
goes back to the model it started the round from; lacking an included model, it listens in the next round. A
peer that is not a member (it joined late) listens: it receives and sends no model of its own. With secure
aggregation the exchange is secure_exchange.py's: the members' changes travel only masked, and the round's model
is unmasked after the server's decision. Links close once the round's model is settled. Each Ready says whether
the peer holds the round's common model, so the server makes a peer that missed it a listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from py_shared.decentralized import exchange, secure_exchange
from py_shared.decentralized.exchange import Outcome
from py_shared.decentralized.secure_exchange import SecureOutcome, SecureSetup
from py_shared.federated.client import Refused, Status, StatusCallback
from py_shared.models.base import Model
from py_shared.protocol.messages import (
    Error,
    GlobalModel,
    Join,
    Leave,
    Message,
    ProtocolError,
    RoundInfo,
    decode_message,
    encode_message,
)
from py_shared.protocol.peer_link import SendSignal
from py_shared.protocol.peer_messages import (
    IceServer,
    PeerWelcome,
    Ready,
    Received,
    RoundFinal,
    RoundPeers,
    Signal,
)
from py_shared.protocol.transport import Connect, ConnectionClosed, QueuedTransport, retry_with_backoff
from py_shared.protocol.vectors import check_vector_bytes
from py_shared.secure.crypto import Crypto
from py_shared.task import TaskDefinition
from py_shared.training.trainer import TrainingCancelled
from py_shared.weights import bytes_to_vector, get_vector, set_vector, vector_size, vector_to_bytes

log = logging.getLogger("pydisco.decentralized")
DECISION_GRACE_S = 30.0  # how long after its own report a peer waits for the server's decision


def fingerprint(model: bytes | None) -> str:
    """A short digest of a model's bytes, for people (and tests) to see that peers hold the same model."""
    return hashlib.sha256(model).hexdigest()[:16] if model is not None else ""


class OpenLink(Protocol):
    """The platform's way to open a WebRTC data channel to one peer (py_cli.rtc_link.open_link on CPython,
    py_browser.rtc_link.open_link in a page)."""

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
        max_backoff_s: float = 10.0,
        max_attempts: int = 30,
        crypto: Crypto | None = None,
    ) -> None:
        if task.scheme != "decentralized":
            raise ValueError(f"task {task.id!r} is {task.scheme}, not decentralized")
        if task.secure_aggregation and crypto is None:
            raise ValueError(f"task {task.id!r} aggregates securely: the peer needs the platform's crypto backend")
        self.crypto = crypto
        self.task, self.model, self.samples, self.connect, self.open_link = task, model, samples, connect, open_link
        self.name, self.token, self.on_status = name, token, on_status
        self.max_backoff_s, self.max_attempts = max_backoff_s, max_attempts
        self.server: QueuedTransport | None = None
        self.peer_id = ""
        self.round = 0
        self.ice_servers: tuple[IceServer, ...] = ()
        self.status = Status("connecting")
        self.links: dict[str, str] = {}  # neighbour -> its link's state in words, for the status line
        self.common: bytes | None = None  # the model every member started this round from
        self.on_new_global: Callable[[], None] | None = None
        self.cancelled = False
        self.joined = False  # whether this peer joined before (then it keeps its model on joining again)

    def _report(self, **changes: object) -> None:
        self.status = replace(self.status, **changes)  # type: ignore[arg-type]
        if self.on_status:
            self.on_status(self.status)

    def _link_state(self, peer: str, state: str) -> None:
        self.links[peer] = state
        words = ", ".join(f"{p} {s}" for p, s in sorted(self.links.items()))
        self._report(detail=f"round {self.round}: {words}")

    async def start(self) -> None:
        """Connect to the signaling server and join (retrying with backoff); the welcome says which round to train
        for."""

        def retrying(why: str) -> None:
            self._report(state="reconnecting", detail=why)

        try:
            await retry_with_backoff(self._join, retrying, self.max_attempts, self.max_backoff_s,
                                     self._stop_if_cancelled)  # fmt: skip
        except (Refused, TrainingCancelled):
            if self.server is not None:  # or the server would wait for this peer to get ready
                await self.server.close()
            raise

    def _stop_if_cancelled(self) -> None:
        if self.cancelled:
            raise TrainingCancelled("left the peers")

    async def cancel(self) -> None:
        """Stop waiting (for the round's peers, the exchange, the server): the waiting call raises
        TrainingCancelled. Safe to call from a UI handler while the peer is blocked."""
        self.cancelled = True
        if self.server is not None:
            await self.server.close()

    async def _join(self) -> None:
        if self.server is not None:
            await self.server.close()
        self.server = await self.connect()
        join = Join(task_id=self.task.id, samples=self.samples, client_name=self.name, token=self.token)
        await self.server.send(encode_message(join))
        welcome, _ = await self._next(PeerWelcome)
        assert isinstance(welcome, PeerWelcome)
        if welcome.initial_model:
            initial = await self._initial_model()
            if not self.joined:  # after a server restart the peers keep the model they trained together
                self._load(initial)
        if not self.joined:
            # at round 0 the model is the task's seeded initial one; a later joiner has no common model until it
            # listened to a round
            self.common = vector_to_bytes(get_vector(self.model)) if welcome.round == 0 else None
        elif welcome.round not in (0, self.round):
            self.common = None  # rounds went on while this peer was away (round 0: the server restarted)
        self.peer_id, self.round, self.ice_servers = welcome.peer_id, welcome.round, welcome.ice_servers
        self.joined = True
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
        """Exchange models with the round's neighbours and continue from their average (the Trainer's hook). If
        the signaling server's connection drops, the peer joins again and takes part in the round, unless it went
        on without the peer: then the round is lost to it, and it goes on with the next, as the others do."""
        while True:
            wanted = self.round
            try:
                await self._take_part()
                return
            except ConnectionClosed as e:
                self._stop_if_cancelled()
                log.warning("round %d: %s; joining again", self.round, e)
                self._report(state="reconnecting", detail=str(e))
                self.links = {}
                await self.start()
            if self.round != wanted:
                return  # the round went on without this peer (or the server restarted): the next one is its

    async def _take_part(self) -> None:
        trained = vector_to_bytes(get_vector(self.model))
        peers = await self._round_peers()
        if peers is None:
            self._report(state="training", round=self.round, detail="", fingerprint="")
            return
        member = self.peer_id in peers.members
        self._report(state="aggregating", participants=len(peers.members))
        decision, model = await self._exchange(peers, trained if member else None)
        if model is not None:
            self._load(model)
            log.info("round %d: the average of %d models", self.round, len(decision.included))
        elif self.common is not None and not decision.included:
            self._load(self.common)  # nothing included: every member goes back to the round's common start
            log.warning("round %d: no model was included; back to the round's start", self.round)
        else:
            self.common = None  # this peer lacks the included models: the server makes it listen next round
            log.warning("round %d: missing an included model; listening next round", self.round)
        self.round += 1
        self.links = {}
        self._report(state="training", round=self.round, detail="", fingerprint=fingerprint(self.common))
        if self.on_new_global:
            self.on_new_global()

    async def _round_peers(self) -> RoundPeers | None:
        """Say we are ready and wait for the round's peers. Should the round's exchange have begun without us (we
        joined or came back while it was under way), wait for its end instead and return None: the round is lost
        to this peer, which is then ready for the next one after its next local round, as the others are (were it
        ready at once, it would be a round ahead of them, waiting at the end for a round nobody else takes)."""
        server = self._server()
        await server.send(encode_message(self._ready()))
        self._report(state="waiting", detail=f"waiting for the peers of round {self.round}")
        missed = False
        while True:
            message = self._handle(await server.receive())
            if isinstance(message, RoundPeers) and message.round == self.round:
                return message
            if isinstance(message, Error) and message.code == "stale_round":
                missed = True
            elif isinstance(message, RoundInfo) and missed and message.round > self.round:
                log.info("round %d went on without this peer: round %d is next", self.round, message.round)
                self.round, self.common = message.round, None
                return None

    def _ready(self) -> Ready:
        return Ready(round=self.round, samples=self.samples, has_model=self.common is not None)

    def _load(self, vector: bytes) -> None:
        set_vector(self.model, bytes_to_vector(vector, self.model.parameters()[0].device).realize())
        self.common = vector

    async def _exchange(self, peers: RoundPeers, mine: bytes | None) -> tuple[RoundFinal, bytes | None]:
        """Open links to the neighbours and run the topology's exchange until done or the deadline; report what
        this peer holds; return the server's decision and the round's model for it (None: this peer lacks it)."""
        server, round_ = self._server(), self.round
        signals = {n: asyncio.Queue[tuple[str, str]]() for n in peers.neighbours}
        decided: asyncio.Future[RoundFinal] = asyncio.get_running_loop().create_future()
        reader = asyncio.ensure_future(self._read_server(signals, decided))
        links = {n: asyncio.ensure_future(self._open(n, signals[n])) for n in peers.neighbours}

        async def link_to(peer: str) -> QueuedTransport:
            return await asyncio.shield(links[peer])

        ctx = exchange.Context(self.peer_id, round_, peers.members, peers.neighbours, vector_size(self.model), mine,
                               self.samples, link_to, self._link_state)  # fmt: skip
        outcome, transfer = self._start_exchange(ctx, peers.weight_base)
        timeout = self.task.decentralized.exchange_timeout_s
        try:
            await asyncio.wait([transfer], timeout=timeout)
            if not transfer.done():
                transfer.cancel()
                log.warning("round %d: the exchange was not done within %g s", round_, timeout)
                for n in peers.neighbours:
                    if self.links.get(n, "").startswith(("connecting", "connected")):
                        self._link_state(n, f"left out (not done within {timeout:g} s)")
            await server.send(encode_message(Received(round=round_, peers=outcome.reported())))
            decision = await asyncio.wait_for(asyncio.shield(decided), DECISION_GRACE_S)
        except TimeoutError:
            raise ConnectionClosed(f"the server decided nothing about round {round_}") from None
        else:
            if self.task.secure_aggregation and decision.included:
                self._report(secure=f"secure aggregation: the sum of {len(decision.included)} of "
                                    f"{len(peers.members)} peers' models")  # fmt: skip
            return decision, await outcome.settle(decision.included)
        finally:
            reader.cancel()
            for opening in links.values():
                opening.cancel()
                if opening.done() and not opening.cancelled() and opening.exception() is None:
                    await opening.result().close()

    def _start_exchange(self, ctx: exchange.Context, weight_base: int) -> tuple[Outcome, asyncio.Future[None]]:
        """The outcome this round's exchange fills, and the exchange under way (topology; plain or secure)."""
        topology = self.task.decentralized.topology
        if self.task.secure_aggregation:
            assert self.crypto is not None
            start = self.common or bytes(4 * ctx.size)  # nobody holds a common model: changes from zero
            setup = SecureSetup(self.crypto, self.task.id, self.task.secure, start, fingerprint(self.common),
                                weight_base, str(self.model.parameters()[0].device))  # fmt: skip
            secure = SecureOutcome(ctx, setup, ring=topology == "ring")
            run = secure_exchange.ring if topology == "ring" else secure_exchange.mesh
            return secure, asyncio.ensure_future(run(secure))
        if topology == "ring":
            ring = exchange.RingOutcome()
            return ring, asyncio.ensure_future(exchange.ring(ctx, ring))
        mesh = exchange.GossipOutcome() if topology == "gossip" else exchange.MeshOutcome()
        return mesh, asyncio.ensure_future(exchange.mesh(ctx, mesh))

    async def _open(self, peer: str, signals: asyncio.Queue[tuple[str, str]]) -> QueuedTransport:
        """A link to `peer` (the lower id offers), its signaling relayed by the server."""
        server, round_ = self._server(), self.round

        async def send_signal(what: str, data: str) -> None:
            await server.send(encode_message(Signal(round=round_, peer=peer, what=what, data=data)))  # type: ignore[arg-type]

        self._link_state(peer, "connecting")
        try:
            link = await self.open_link(peer, self.peer_id < peer, send_signal, signals, self.ice_servers,
                                        self.task.decentralized.exchange_timeout_s)  # fmt: skip
        except (ConnectionClosed, TimeoutError) as e:
            log.warning("round %d: no link to peer %s: %s", round_, peer, e)
            self._link_state(peer, f"left out ({e})")
            raise
        self._link_state(peer, "connected")
        return link

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

    async def _initial_model(self) -> bytes:
        """The task's initial weights, which the server sends after its welcome (drawn once, for every device)."""
        _, payload = await self._next(GlobalModel)
        try:
            check_vector_bytes(payload, vector_size(self.model))
        except ProtocolError as e:
            raise Refused(f"the server's initial model does not fit this task's: {e}") from None
        return payload

    async def _next(self, kind: type) -> tuple[Message, bytes]:
        """The next message of `kind` from the server and its payload, acting on whatever comes before it."""
        while True:
            message, payload = self._decode(await self._server().receive())
            if isinstance(self._act(message), kind):
                return message, payload

    def _handle(self, frame: bytes) -> Message:
        return self._act(self._decode(frame)[0])

    def _decode(self, frame: bytes) -> tuple[Message, bytes]:
        try:
            return decode_message(frame)
        except ProtocolError as e:
            raise Refused(f"the server sent something unreadable: {e}") from None

    def _act(self, message: Message) -> Message:
        """Act on the news and errors the server sends whatever the phase."""
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
