"""What peers send each other in one round, per topology, over links the peer has opened to its neighbours.

Mesh: every member sends its model to every neighbour and keeps every member neighbour's model; it reports the
members whose models it holds, and averages those the server includes (average.py). n - 1 models out per member.
Ring (after the FedUp seed): members pass a running sum around the ring in the server's order, each adding its
samples-weighted model in float64; the last divides by the samples and sends the average on around the ring, so
every member sends about one float64 sum and one float32 model whatever n is, and every peer ends with the bytes
one peer computed. A member reports the contributors of the average it holds; a break anywhere (a drop, a
timeout, something malformed) leaves the members after it without an average, and the server includes nothing
unless all who hold one hold the same. Listeners receive the average from the ring's last member.
Gossip: a mesh exchange over the round's random regular graph (each member sends its model to its degree
neighbours); each averages its own and its neighbours' models with equal weights, so the models agree only after
several rounds, faster the larger the degree (bench.dec_round measures how many).
Each exchange fills an Outcome: what to report, and the model for what the server includes. Secure rounds:
secure_exchange.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from py_shared.decentralized.average import weighted_average
from py_shared.protocol.messages import ProtocolError, decode_message, encode_message
from py_shared.protocol.peer_messages import PartialSum, PeerModel, RingModel
from py_shared.protocol.transport import ConnectionClosed, QueuedTransport
from py_shared.protocol.vectors import check_vector_bytes

log = logging.getLogger("pydisco.decentralized")
HEADER_ROOM = 64 * 1024


@dataclass(frozen=True)
class Context:
    """One peer's view of one round: who it is, the round's members in order, its own model and how to reach the
    neighbours (`link_to` waits for a link and raises if it could not be opened; `state` reports in words)."""

    me: str
    round: int
    members: tuple[str, ...]
    neighbours: tuple[str, ...]
    size: int  # the model's number of values
    mine: bytes | None  # our trained model (float32), None for a listener
    samples: int
    link_to: Callable[[str], Awaitable[QueuedTransport]]
    state: Callable[[str, str], None]


@dataclass
class MeshOutcome:
    """The models this peer holds, by member."""

    held: dict[str, tuple[bytes, int]] = field(default_factory=dict)

    def reported(self) -> tuple[str, ...]:
        return tuple(sorted(self.held))

    def model_for(self, included: tuple[str, ...]) -> bytes | None:
        if not included or not all(p in self.held for p in included):
            return None
        return weighted_average([self.held[p] for p in included])

    async def settle(self, included: tuple[str, ...]) -> bytes | None:
        return self.model_for(included)


@dataclass
class RingOutcome:
    """The ring's average this peer holds, and whose models it sums."""

    contributors: tuple[str, ...] = ()
    average: bytes | None = None

    def reported(self) -> tuple[str, ...]:
        return self.contributors

    async def settle(self, included: tuple[str, ...]) -> bytes | None:
        return self.average if included and included == self.contributors else None


@dataclass
class GossipOutcome(MeshOutcome):
    """A mesh exchange with this round's graph neighbours only; the result is this peer's own mix."""

    def model_for(self, included: tuple[str, ...]) -> bytes | None:
        # equal weights: on a regular graph the mixing is doubly stochastic, so the peers' models converge to
        # their plain mean (sample weights would pull it elsewhere)
        mixed = [(self.held[p][0], 1) for p in sorted(self.held) if p in included]
        return weighted_average(mixed) if mixed else None


class Outcome(Protocol):
    """What an exchange leaves a peer with: whose models it reports holding, and the round's model once the
    server has named the included members (None: this peer lacks it)."""

    def reported(self) -> tuple[str, ...]: ...

    async def settle(self, included: tuple[str, ...]) -> bytes | None: ...


LinkErrors = (ConnectionClosed, TimeoutError, ProtocolError)


async def mesh(ctx: Context, outcome: MeshOutcome) -> None:
    """Send our model to every neighbour and take every member neighbour's, each link on its own."""
    if ctx.mine is not None:
        outcome.held[ctx.me] = (ctx.mine, ctx.samples)
    await asyncio.gather(*(_mesh_link(ctx, n, outcome) for n in ctx.neighbours))


async def _mesh_link(ctx: Context, peer: str, outcome: MeshOutcome) -> None:
    try:
        link = await ctx.link_to(peer)
        sending = None
        if ctx.mine is not None:
            frame = encode_message(PeerModel(round=ctx.round, samples=ctx.samples), ctx.mine)
            sending = asyncio.ensure_future(link.send(frame))
        if peer in ctx.members:
            message, payload = decode_message(await link.receive(), 4 * ctx.size + HEADER_ROOM)
            if not isinstance(message, PeerModel) or message.round != ctx.round:
                raise ProtocolError("unexpected", f"peer {peer} sent a {message.kind} message, not its round's model")
            check_vector_bytes(payload, ctx.size)
            outcome.held[peer] = (payload, message.samples)
            ctx.state(peer, "model received")
        if sending is not None:
            await sending
            ctx.state(peer, "model exchanged" if peer in ctx.members else "model sent")
    except LinkErrors as e:
        log.warning("round %d: peer %s left out: %s", ctx.round, peer, e)
        ctx.state(peer, f"left out ({e})")


async def ring(ctx: Context, outcome: RingOutcome) -> None:
    """Take part in the ring's two passes (a listener only waits for the average from the last member)."""
    n, last = len(ctx.members), ctx.members[-1]
    try:
        if ctx.me not in ctx.members:
            await _take_average(ctx, last, outcome)
            return
        k = ctx.members.index(ctx.me)
        assert ctx.mine is not None
        if n == 1:
            outcome.contributors, outcome.average = ctx.members, ctx.mine
            return
        successor, predecessor = ctx.members[(k + 1) % n], ctx.members[k - 1]
        if k == 0:
            total, samples = _weighted(ctx.mine, ctx.samples), ctx.samples
        else:
            total, samples = await _take_partial(ctx, predecessor, k)
            _add_weighted(total, ctx.mine, ctx.samples)
            samples += ctx.samples
        if k < n - 1:
            partial = PartialSum(round=ctx.round, contributors=ctx.members[: k + 1], samples=samples)
            await (await ctx.link_to(successor)).send(encode_message(partial, total.tobytes()))
            ctx.state(successor, "running sum sent")
            await _take_average(ctx, predecessor, outcome)
            if k < n - 2:
                await _send_average(ctx, successor, outcome)
            return
        average = array("f", (t / samples for t in total)).tobytes()
        check_vector_bytes(average, ctx.size)
        outcome.contributors, outcome.average = ctx.members, average
        listeners = [p for p in ctx.neighbours if p not in ctx.members]
        await asyncio.gather(*(_send_average(ctx, p, outcome) for p in listeners), return_exceptions=True)
        await _send_average(ctx, successor, outcome)
    except LinkErrors as e:
        log.warning("round %d: the ring broke at %s: %s", ctx.round, ctx.me, e)
        ctx.state(ctx.me, f"ring broken ({e})")


def _weighted(model: bytes, samples: int) -> array[float]:
    return array("d", (samples * x for x in array("f", model)))


def _add_weighted(total: array[float], model: bytes, samples: int) -> None:
    for i, x in enumerate(array("f", model)):
        total[i] += samples * x


async def _take_partial(ctx: Context, predecessor: str, k: int) -> tuple[array[float], int]:
    """The running sum of the members before us, checked: from our predecessor, with exactly those contributors."""
    message, payload = decode_message(await (await ctx.link_to(predecessor)).receive(), 8 * ctx.size + HEADER_ROOM)
    if not isinstance(message, PartialSum) or message.round != ctx.round:
        raise ProtocolError("unexpected", f"peer {predecessor} sent a {message.kind} message, not the running sum")
    if message.contributors != ctx.members[:k]:
        raise ProtocolError("bad_message", f"peer {predecessor}'s running sum is not of the members before it")
    if len(payload) != 8 * ctx.size:
        raise ProtocolError("wrong_length", f"a running sum of {ctx.size} values has {8 * ctx.size} bytes")
    total = array("d", payload)
    if not all(math.isfinite(t) for t in total):
        raise ProtocolError("not_finite", f"peer {predecessor}'s running sum contains NaN or infinite values")
    ctx.state(predecessor, "running sum received")
    return total, message.samples


async def _take_average(ctx: Context, sender: str, outcome: RingOutcome) -> None:
    message, payload = decode_message(await (await ctx.link_to(sender)).receive(), 4 * ctx.size + HEADER_ROOM)
    if not isinstance(message, RingModel) or message.round != ctx.round or message.contributors != ctx.members:
        raise ProtocolError("unexpected", f"peer {sender} sent a {message.kind} message, not the ring's average")
    check_vector_bytes(payload, ctx.size)
    outcome.contributors, outcome.average = message.contributors, payload
    ctx.state(sender, "average received")


async def _send_average(ctx: Context, peer: str, outcome: RingOutcome) -> None:
    assert outcome.average is not None
    frame = encode_message(RingModel(round=ctx.round, contributors=outcome.contributors), outcome.average)
    await (await ctx.link_to(peer)).send(frame)
    ctx.state(peer, "average sent")
