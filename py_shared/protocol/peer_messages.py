"""The messages of decentralized learning, decoded by messages.decode_message like every other.

The server only introduces peers: a peer joins (messages.Join), trains, says it is Ready; once enough are ready
the server sends each member of the round its RoundPeers; peers open WebRTC data channels to their neighbours
through Signal messages the server relays; they exchange PeerModel frames over those channels, never through the
server; each tells the server whose models it Received, and the server answers with RoundFinal, the members every
survivor holds, which every peer then averages in the same order. Secure rounds swap PeerKeys, PeerShares and
masked inputs (MaskedModel on a mesh, MaskedSum on a ring) instead, and, once decided, OpenedShares (see
py_shared/decentralized/secure_exchange.py). Nothing the server handles carries a weight.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from py_shared.protocol.secure_messages import MAX_SAMPLES, round_and_samples_problems

MAX_SIGNAL_CHARS = 12_000  # an SDP offer with a few candidates is 1-4 KB; a frame header holds 16 KiB
MAX_PEERS = 1024  # in one round's lists
PEER_ID_CHARS = 16


def _ids_problems(field: str, ids: tuple[str, ...]) -> Iterator[str]:
    if len(ids) > MAX_PEERS or any(not 0 < len(i) <= PEER_ID_CHARS for i in ids):
        yield f"{field}: at most {MAX_PEERS} peer ids of 1 to {PEER_ID_CHARS} characters"
    elif len(set(ids)) != len(ids):
        yield f"{field}: a peer id is repeated"


@dataclass(frozen=True, kw_only=True)
class IceServer:
    """A STUN or TURN server the peers use to reach each other (none is needed on one machine or one LAN)."""

    urls: tuple[str, ...]
    username: str = ""
    credential: str = ""


@dataclass(frozen=True, kw_only=True)
class PeerWelcome:
    """Server: a peer is admitted to a decentralized task; `round` is the one it trains for next. With
    `initial_model`, a GlobalModel follows: the task's seeded initial weights, for every peer to start from."""

    kind: Literal["peer_welcome"] = "peer_welcome"
    peer_id: str
    round: int
    participants: int
    min_participants: int
    ice_servers: tuple[IceServer, ...] = ()
    initial_model: bool = False


@dataclass(frozen=True, kw_only=True)
class Ready:
    """Peer: my local training for `round` is done, with `samples` examples; put me in its exchange."""

    kind: Literal["ready"] = "ready"
    round: int
    samples: int
    has_model: bool = True  # False: this peer lacks the round's common model, so it can only listen

    def problems(self) -> Iterator[str]:
        return round_and_samples_problems(self.round, self.samples)


@dataclass(frozen=True, kw_only=True)
class RoundPeers:
    """Server: `round`'s exchange starts; `members` in the order every peer aggregates, and the receiver's
    `neighbours`, whom it connects to (the lower id makes the offer)."""

    kind: Literal["round_peers"] = "round_peers"
    round: int
    members: tuple[str, ...]
    neighbours: tuple[str, ...]
    weight_base: int = 0  # the most samples of a member: secure rounds weigh each input by samples / weight_base


SignalKind = Literal["offer", "answer", "candidate"]


@dataclass(frozen=True, kw_only=True)
class Signal:
    """WebRTC signaling between two members of a round: to the server, `peer` is the addressee; relayed, the
    sender. `data` is an SDP (offer, answer) or a JSON RTCIceCandidateInit (candidate)."""

    kind: Literal["signal"] = "signal"
    round: int
    peer: str
    what: SignalKind
    data: str

    def problems(self) -> Iterator[str]:
        if len(self.data) > MAX_SIGNAL_CHARS:
            yield f"data: at most {MAX_SIGNAL_CHARS} characters"
        yield from _ids_problems("peer", (self.peer,))


@dataclass(frozen=True, kw_only=True)
class Received:
    """Peer: the members of `round` whose models I hold, myself included."""

    kind: Literal["received"] = "received"
    round: int
    peers: tuple[str, ...]

    def problems(self) -> Iterator[str]:
        yield from _ids_problems("peers", self.peers)


@dataclass(frozen=True, kw_only=True)
class RoundFinal:
    """Server: average the models of `included` (every survivor holds them all), in this order."""

    kind: Literal["round_final"] = "round_final"
    round: int
    included: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PeerModel:
    """Peer to peer, over a data channel: my model after `round`'s local training (payload: its flat vector)."""

    kind: Literal["peer_model"] = "peer_model"
    round: int
    samples: int

    def problems(self) -> Iterator[str]:
        return round_and_samples_problems(self.round, self.samples)


@dataclass(frozen=True, kw_only=True)
class PartialSum:
    """Peer to its successor on a ring: the sum of `contributors`' models times their samples (payload: float64
    values), and the sum of their samples."""

    kind: Literal["partial_sum"] = "partial_sum"
    round: int
    contributors: tuple[str, ...]
    samples: int

    def problems(self) -> Iterator[str]:
        yield from _ids_problems("contributors", self.contributors)
        if not 1 <= self.samples <= MAX_PEERS * MAX_SAMPLES:
            yield f"samples: must be between 1 and {MAX_PEERS * MAX_SAMPLES}"


@dataclass(frozen=True, kw_only=True)
class RingModel:
    """Peer to peer around a ring: the round's average of `contributors`' models (payload: its flat vector)."""

    kind: Literal["ring_model"] = "ring_model"
    round: int
    contributors: tuple[str, ...]

    def problems(self) -> Iterator[str]:
        yield from _ids_problems("contributors", self.contributors)


@dataclass(frozen=True, kw_only=True)
class PeerKeys:
    """Peer to peer, secure rounds: my public keys and seed commitment (payload: secure.records.pack_keys), my
    samples, and the fingerprint of the model I start the round from (masked inputs are changes to it)."""

    kind: Literal["peer_keys"] = "peer_keys"
    round: int
    samples: int
    start: str

    def problems(self) -> Iterator[str]:
        yield from round_and_samples_problems(self.round, self.samples)
        if len(self.start) > PEER_ID_CHARS:
            yield f"start: a fingerprint of at most {PEER_ID_CHARS} characters"


@dataclass(frozen=True, kw_only=True)
class PeerShares:
    """Peer to peer, secure rounds: my key shares for you, encrypted (payload: one secure.records sealed record)."""

    kind: Literal["peer_shares"] = "peer_shares"
    round: int


@dataclass(frozen=True, kw_only=True)
class MaskedModel:
    """Peer to peer, secure mesh: my masked input (payload: uint32 words) and the members I masked it with."""

    kind: Literal["masked_model"] = "masked_model"
    round: int
    masked_with: tuple[str, ...]

    def problems(self) -> Iterator[str]:
        yield from _ids_problems("masked_with", self.masked_with)


@dataclass(frozen=True, kw_only=True)
class MaskedSum:
    """Peer to peer, secure ring: the sum of `contributors`' masked inputs (payload: uint32 words)."""

    kind: Literal["masked_sum"] = "masked_sum"
    round: int
    contributors: tuple[str, ...]

    def problems(self) -> Iterator[str]:
        yield from _ids_problems("contributors", self.contributors)


@dataclass(frozen=True, kw_only=True)
class OpenedShares:
    """Peer to peer, secure rounds, once the server named the `included` members: my shares that unmask their
    sum (payload: secure.records opened records)."""

    kind: Literal["opened_shares"] = "opened_shares"
    round: int
    included: tuple[str, ...]

    def problems(self) -> Iterator[str]:
        yield from _ids_problems("included", self.included)


PeerMessage = (
    PeerWelcome | Ready | RoundPeers | Signal | Received | RoundFinal | PeerModel | PartialSum | RingModel
    | PeerKeys | PeerShares | MaskedModel | MaskedSum | OpenedShares
)  # fmt: skip
PEER_PAYLOAD = ("peer_model", "partial_sum", "ring_model", "peer_keys", "peer_shares", "masked_model", "masked_sum",
                "opened_shares")  # fmt: skip
