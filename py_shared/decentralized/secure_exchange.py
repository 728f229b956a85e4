"""Secure aggregation between peers: each member's change to the round's common model leaves it only masked, and
the peers unmask only the sum of those the server includes (Bonawitz et al. 2017, as in py_shared/secure: the same
SecAggClient, masks, Shamir shares and unmasking; every peer plays the aggregator for itself).

Every member takes the round's members in the server's order as the participants 1..n, its mask neighbours from
secure.graph.mask_graph (every other member, or a sparse circulant), and with each of them over the data channels:
swaps fresh public keys (with its samples and the fingerprint of the model it starts from: peers that start from
different models do not pair), then its encrypted key shares. It masks its fixed-point encoded, samples-weighted
change with its self mask and the pair masks of the neighbours whose shares it holds.
Mesh: each member sends its masked input, and the members it masked with, to every other member, and reports
holding a member's input only if both masked with each other, so the server's choice (every included member holds
every other's) is a set whose pair masks cancel, up to those of members who shared and dropped.
Ring: the masked inputs are summed on the way round the members and the masked total comes back round (8 bytes a
value per member, against 12 plain), all pair masks cancel once every member masked with all of its neighbours
(if one did not, the ring breaks: nothing is included). Key material needs links beyond the ring's: the server
links secure ring members to every member, but only the small messages travel those links.
Once the server has named the included members, each opens to the others the shares of their seeds and of the
mask keys of members who shared but are not included (never both for one member: SecAggClient checks), and each
unmasks the sum, checks every rebuilt secret against what its owner published, and adds the mean change to the
common model in plain Python, so every peer ends with the same bits. The last included member sends the result to
the round's listeners.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from tinygrad import Tensor

from py_shared.decentralized.average import add_encoded_sum
from py_shared.decentralized.exchange import HEADER_ROOM, Context, LinkErrors
from py_shared.protocol.messages import ProtocolError, decode_message, encode_message
from py_shared.protocol.peer_messages import MaskedModel, MaskedSum, OpenedShares, PeerKeys, PeerShares, RingModel
from py_shared.protocol.secure_messages import ForwardedShares, KeyList, UnmaskRequest
from py_shared.protocol.vectors import check_vector_bytes
from py_shared.secure import fixed_point, masks, records, unmask
from py_shared.secure.client import SecAggClient, SecureRoundError
from py_shared.secure.crypto import Crypto
from py_shared.secure.graph import mask_graph, suggested_degree, threshold
from py_shared.secure.precision import FixedPoint, fixed_point_for
from py_shared.secure.records import PeerKey
from py_shared.task import SecureAggregation
from py_shared.weights import bytes_to_vector

log = logging.getLogger("pydisco.decentralized")
PURPOSE = "peers"
T = TypeVar("T")


@dataclass(frozen=True)
class SecureSetup:
    """What a peer brings to a secure round besides the Context: its crypto backend, the task's settings, the
    model every member starts from and its fingerprint, the round's weight base, and the training device."""

    crypto: Crypto
    task_id: str
    settings: SecureAggregation
    start: bytes
    start_fingerprint: str
    weight_base: int
    device: str


@dataclass
class Published:
    """A mask neighbour's keys for the round, as it sent them."""

    keys: PeerKey
    commitment: bytes
    samples: int


@dataclass
class SecureOutcome:
    """One peer's state in a secure round: the neighbours' keys, the masked inputs or sum it holds, what it
    reports, and (settle) the round's model once the server has decided."""

    ctx: Context
    setup: SecureSetup
    ring: bool
    index: dict[str, int] = field(default_factory=dict)  # member -> its participant index
    partners: tuple[str, ...] = ()  # this member's mask neighbours
    published: dict[str, Published] = field(default_factory=dict)
    client: SecAggClient | None = None
    masked: bytes = b""  # our masked input
    masked_with: dict[str, tuple[str, ...]] = field(default_factory=dict)  # member -> whom it masked with
    inputs: dict[str, bytes] = field(default_factory=dict)  # mesh: member -> its masked input
    total: bytes = b""  # ring: the masked sum of every member's input
    held: tuple[str, ...] = ()
    excluded: set[str] = field(default_factory=set)
    graph: dict[int, frozenset[int]] = field(default_factory=dict)  # the mask graph over participant indices
    threshold: int = 2
    codec: FixedPoint = field(init=False)

    def __post_init__(self) -> None:
        members = self.ctx.members
        self.index = {p: i for i, p in enumerate(members, start=1)}
        settings = self.setup.settings
        degree = (settings.neighbours or suggested_degree(len(members))) if settings.graph == "sparse" else 0
        self.graph = mask_graph(list(self.index.values()), degree)
        self.threshold = threshold(settings.threshold, len(self.graph[1]))
        self.codec = fixed_point_for(settings.clip_value, settings.max_participants)
        by_index = {i: p for p, i in self.index.items()}
        if self.ctx.me in self.index:
            self.partners = tuple(by_index[i] for i in sorted(self.graph[self.index[self.ctx.me]]))

    def reported(self) -> tuple[str, ...]:
        return self.held

    async def phase(self, peers: Iterable[str], step: Callable[[str], Awaitable[T]], phases: int = 1) -> dict[str, T]:
        """Run `step` with each peer not yet left out, for at most `phases` x secure.phase_timeout_s; who fails is
        left out."""
        tasks = {p: asyncio.ensure_future(step(p)) for p in peers if p not in self.excluded}
        if not tasks:
            return {}
        timeout = phases * self.setup.settings.phase_timeout_s
        try:
            done, _ = await asyncio.wait(tasks.values(), timeout=timeout)
        finally:
            for t in tasks.values():
                t.cancel()
        out = {}
        for p, t in tasks.items():
            if t in done and not t.cancelled() and t.exception() is None:
                out[p] = t.result()
                continue
            why = str(t.exception()) if t in done and not t.cancelled() else f"no answer within {timeout:g} s"
            log.warning("round %d: peer %s left out of the secure sum: %s", self.ctx.round, p, why)
            self.excluded.add(p)
            self.ctx.state(p, f"left out ({why})")
        return out

    async def swap(self, peer: str, frame: bytes, kind: type[T]) -> tuple[T, bytes]:
        """Send `frame` to `peer` and take its message of `kind` for this round."""
        link = await self.ctx.link_to(peer)
        sending = asyncio.ensure_future(link.send(frame))
        try:
            message, payload = decode_message(await link.receive(), 4 * self.ctx.size + HEADER_ROOM)
            if not isinstance(message, kind) or getattr(message, "round", None) != self.ctx.round:
                raise ProtocolError("unexpected", f"peer {peer} sent a {message.kind} message, not its {kind.__name__}")
            await sending
        finally:
            sending.cancel()
        return message, payload

    async def agree_keys(self) -> None:
        """Swap keys, then shares, with the mask neighbours, and mask our input with those whose shares we hold.
        Raises SecureRoundError when too few remain to share our secrets safely."""
        ctx, setup = self.ctx, self.setup
        me = self.index[ctx.me]
        self.client = client = SecAggClient(setup.crypto, setup.task_id, ctx.round, setup.settings.threshold,
                                            self._encoded, PURPOSE, len(self.graph[me]))  # fmt: skip
        mine = PeerKeys(round=ctx.round, samples=ctx.samples, start=setup.start_fingerprint)
        frame = encode_message(mine, await client.advertise())
        # keys go to every member, not only the mask neighbours: unmasking checks each member's rebuilt seed
        others = [p for p in ctx.members if p != ctx.me]
        for p, (theirs, payload) in (await self.phase(others, lambda p: self.swap(p, frame, PeerKeys))).items():
            if theirs.start != setup.start_fingerprint:
                self.excluded.add(p)
                ctx.state(p, "left out (it starts the round from another model)")
                continue
            cipher, mask, commitment = records.unpack_keys(payload)
            self.published[p] = Published(PeerKey(self.index[p], cipher, mask), commitment, theirs.samples)
        partners = [p for p in self.partners if p in self.published]
        key_list = KeyList(round=ctx.round, attempt=0, index=me, participants=len(ctx.members),
                           threshold=self.threshold, weight_base=setup.weight_base)  # fmt: skip
        keys = records.pack_peer_keys([self.published[p].keys for p in partners])
        sealed = {r.receiver: r for r in records.unpack_sealed(await client.on_key_list(key_list, keys))}

        async def shares(p: str) -> records.SealedShares:
            frame = encode_message(PeerShares(round=ctx.round), records.pack_sealed([sealed[self.index[p]]]))
            _, payload = await self.swap(p, frame, PeerShares)
            if len(payload) != records.SEALED_BYTES:
                raise ProtocolError("wrong_length", f"peer {p} sent more or less than one share record")
            (record,) = records.unpack_sealed(payload)
            if record.sender != self.index[p]:
                raise ProtocolError("bad_message", f"peer {p} sent shares that are not its own")
            return record

        received = await self.phase(partners, shares)
        if not received:
            raise SecureRoundError("no neighbour's key shares arrived")
        self.masked = await client.on_forwarded_shares(
            ForwardedShares(round=ctx.round, attempt=0), records.pack_sealed(list(received.values()))
        )
        self.masked_with[ctx.me] = tuple(p for p in ctx.members if self.index[p] in client.masked_with)

    async def _encoded(self, key_list: KeyList) -> Tensor:
        """Our change to the round's start, weighted by samples / weight base, in fixed point."""
        ctx, setup = self.ctx, self.setup
        if not 0 < ctx.samples <= setup.weight_base:
            raise SecureRoundError(f"the round's weight base {setup.weight_base} is below our {ctx.samples} samples")
        assert ctx.mine is not None
        change = bytes_to_vector(ctx.mine, setup.device) - bytes_to_vector(setup.start, setup.device)
        return fixed_point.encode(change, self.codec, ctx.samples / setup.weight_base).realize()

    async def settle(self, included: tuple[str, ...]) -> bytes | None:
        """The round's model: unmask the included members' sum with the shares they open to each other (a member
        left out, or a listener, takes it from the last included member instead)."""
        ctx = self.ctx
        if not included:
            return None
        if ctx.me not in included:
            return await self._take_result(included) if ctx.me not in ctx.members else None
        if len(included) == 1:
            result = ctx.mine  # alone, there is no sum to hide in
        else:
            result = await self._unmask(included)
        if result is not None and ctx.me == included[-1]:
            listeners = [p for p in ctx.neighbours if p not in ctx.members]
            frame = encode_message(RingModel(round=ctx.round, contributors=included), result)
            await self.phase(listeners, lambda p: self._send(p, frame))
        return result

    async def _send(self, peer: str, frame: bytes) -> None:
        await (await self.ctx.link_to(peer)).send(frame)
        self.ctx.state(peer, "model sent")

    async def _take_result(self, included: tuple[str, ...]) -> bytes | None:
        sender = included[-1]

        async def take(p: str) -> bytes:
            message, payload = decode_message(
                await (await self.ctx.link_to(p)).receive(), 4 * self.ctx.size + HEADER_ROOM
            )
            if not isinstance(message, RingModel) or message.contributors != included:
                raise ProtocolError("unexpected", f"peer {p} sent a {message.kind} message, not the round's model")
            check_vector_bytes(payload, self.ctx.size)
            return payload

        # the sender first waits for the others' shares (one phase at most), then unmasks
        return (await self.phase([sender], take, phases=2)).get(sender)

    async def _unmask(self, included: tuple[str, ...]) -> bytes | None:
        ctx, client = self.ctx, self.client
        assert client is not None
        lists = [self.masked_with.get(p) for p in included]
        if any(m is None for m in lists) or (not self.ring and any(p not in self.inputs for p in included)):
            log.warning("round %d: this peer lacks an included member's masked input", ctx.round)
            return None
        dropped = sorted({q for m in lists if m for q in m} - set(included), key=lambda p: self.index[p])
        request = UnmaskRequest(round=ctx.round, attempt=0, survivors=tuple(self.index[p] for p in included),
                                dropped=tuple(self.index[p] for p in dropped))  # fmt: skip
        try:
            mine = client.on_unmask_request(request)
        except SecureRoundError as e:
            log.warning("round %d: cannot open shares: %s", ctx.round, e)
            return None
        frame = encode_message(OpenedShares(round=ctx.round, included=included), mine)

        async def opened(p: str) -> list[records.OpenedShare]:
            message, payload = await self.swap(p, frame, OpenedShares)
            if message.included != included:
                raise ProtocolError("bad_message", f"peer {p} opens shares for another set of members")
            ctx.state(p, "shares opened")
            return records.unpack_opened(payload)

        answers = await self.phase([p for p in included if p != ctx.me], opened)
        answers[ctx.me] = records.unpack_opened(mine)

        if any(p not in self.published and p != ctx.me for p in (*included, *dropped)):
            log.warning("round %d: this peer lacks the keys of a member it must unmask", ctx.round)
            return None
        owners = {p: unmask.Owner(k.keys.index, k.keys.mask_public, k.commitment) for p, k in self.published.items()}
        public = await self.setup.crypto.x25519_public(client.mask_private)
        owners[ctx.me] = unmask.Owner(self.index[ctx.me], public, records.seed_commitment(client.seed))
        setup = self.setup
        total = self.total
        if not self.ring:
            summed = masks.MaskSum(fixed_point.zeros(ctx.size, setup.device))
            for p in included:
                summed.add(self.inputs[p])
            total = fixed_point.to_bytes(summed.result())
        context = masks.context(setup.task_id, PURPOSE, ctx.round, 0)
        paired = {(self.index[q], self.index[p]) for p in included for q in self.masked_with[p]}
        by_index = {self.index[p]: rs for p, rs in answers.items()}
        try:
            plain = await unmask.remove_masks(setup.crypto, context, fixed_point.words(total, setup.device),
                                              [owners[p] for p in included], [owners[p] for p in dropped],
                                              lambda d, m: (d, m) in paired, by_index, self.threshold)  # fmt: skip
        except unmask.SecretLost as e:
            log.warning("round %d: cannot unmask the sum: %s", ctx.round, e)
            return None
        samples = sum(ctx.samples if p == ctx.me else self.published[p].samples for p in included)
        return add_encoded_sum(
            setup.start, fixed_point.to_bytes(plain), setup.weight_base / (self.codec.scale * samples)
        )


async def mesh(outcome: SecureOutcome) -> None:
    """Agree keys, then swap masked inputs with every other member; hold those that masked with us both ways."""
    ctx = outcome.ctx
    if ctx.mine is None:
        return  # a listener: it takes the model after the server's decision
    if len(ctx.members) == 1:
        outcome.held = (ctx.me,)
        return
    try:
        await outcome.agree_keys()
    except (SecureRoundError, *LinkErrors) as e:
        log.warning("round %d: this peer cannot take part in the secure sum: %s", ctx.round, e)
        ctx.state(ctx.me, f"left out of the secure sum ({e})")
        return
    mine = outcome.masked_with[ctx.me]
    frame = encode_message(MaskedModel(round=ctx.round, masked_with=mine), outcome.masked)

    async def masked(p: str) -> tuple[MaskedModel, bytes]:
        message, payload = await outcome.swap(p, frame, MaskedModel)
        if len(payload) != 4 * ctx.size or set(message.masked_with) - set(ctx.members):
            raise ProtocolError("bad_message", f"peer {p}'s masked input is malformed")
        ctx.state(p, "masked input exchanged")
        return message, payload

    answers = await outcome.phase([p for p in ctx.members if p != ctx.me], masked)
    outcome.inputs[ctx.me] = outcome.masked
    for p, (message, payload) in answers.items():
        outcome.masked_with[p] = message.masked_with
        if (p in mine) == (ctx.me in message.masked_with):  # masks between us cancel (or there are none)
            outcome.inputs[p] = payload
    outcome.held = tuple(p for p in ctx.members if p in outcome.inputs)


async def ring(outcome: SecureOutcome) -> None:
    """Agree keys, then sum the masked inputs round the ring and pass the masked total round."""
    ctx = outcome.ctx
    members, n = ctx.members, len(ctx.members)
    if ctx.mine is None:
        return
    if n == 1:
        outcome.held = (ctx.me,)
        return
    try:
        await outcome.agree_keys()
        if set(outcome.masked_with[ctx.me]) != set(outcome.partners):
            raise SecureRoundError("not every mask neighbour shared its keys")
        k = members.index(ctx.me)
        successor, predecessor = members[(k + 1) % n], members[k - 1]
        total = outcome.masked if k == 0 else _add(await _take_sum(outcome, predecessor, members[:k]), outcome.masked)
        if k < n - 1:
            await _send_sum(outcome, successor, members[: k + 1], total)
            total = await _take_sum(outcome, predecessor, members)
            if k < n - 2:
                await _send_sum(outcome, successor, members, total)
        else:
            await _send_sum(outcome, successor, members, total)
    except (SecureRoundError, *LinkErrors) as e:
        log.warning("round %d: the ring broke at %s: %s", ctx.round, ctx.me, e)
        ctx.state(ctx.me, f"ring broken ({e})")
        return
    for p in members:
        outcome.masked_with[p] = tuple(q for q in members if outcome.index[q] in outcome.graph[outcome.index[p]])
    outcome.total, outcome.held = total, members


def _add(a: bytes, b: bytes) -> bytes:
    return fixed_point.to_bytes(fixed_point.add(fixed_point.words(a), fixed_point.words(b)))


async def _take_sum(outcome: SecureOutcome, sender: str, contributors: tuple[str, ...]) -> bytes:
    ctx = outcome.ctx
    message, payload = decode_message(await (await ctx.link_to(sender)).receive(), 4 * ctx.size + HEADER_ROOM)
    if not isinstance(message, MaskedSum) or message.round != ctx.round or message.contributors != contributors:
        raise ProtocolError("unexpected", f"peer {sender} sent a {message.kind} message, not the masked sum")
    if len(payload) != 4 * ctx.size:
        raise ProtocolError("wrong_length", f"a masked sum of {ctx.size} values has {4 * ctx.size} bytes")
    ctx.state(sender, "masked sum received")
    return payload


async def _send_sum(outcome: SecureOutcome, peer: str, contributors: tuple[str, ...], total: bytes) -> None:
    ctx = outcome.ctx
    await (await ctx.link_to(peer)).send(encode_message(MaskedSum(round=ctx.round, contributors=contributors), total))
    ctx.state(peer, "masked sum sent")
