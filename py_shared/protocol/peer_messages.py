"""The messages of decentralized learning, decoded by messages.decode_message like every other.

The server only introduces peers: a peer joins (messages.Join), trains, says it is Ready; once enough are ready
the server sends each member of the round its RoundPeers; peers open WebRTC data channels to their neighbours
through Signal messages the server relays; they exchange PeerModel frames over those channels, never through the
server; each tells the server whose models it Received, and the server answers with RoundFinal, the members every
survivor holds, which every peer then averages in the same order. Nothing the server handles carries a weight.
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
    """Server: a peer is admitted to a decentralized task; `round` is the one it trains for next."""

    kind: Literal["peer_welcome"] = "peer_welcome"
    peer_id: str
    round: int
    participants: int
    min_participants: int
    ice_servers: tuple[IceServer, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Ready:
    """Peer: my local training for `round` is done, with `samples` examples; put me in its exchange."""

    kind: Literal["ready"] = "ready"
    round: int
    samples: int

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


PeerMessage = PeerWelcome | Ready | RoundPeers | Signal | Received | RoundFinal | PeerModel | PartialSum | RingModel
PEER_PAYLOAD = ("peer_model", "partial_sum", "ring_model")
