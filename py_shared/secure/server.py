"""The untrusted aggregator's side of one attempt of a secure sum, as a state machine without I/O or timers.

Phases: advertise (collect public keys) -> share (collect encrypted shares) -> mask (collect masked inputs)
-> unmask (collect opened shares) -> finish. The caller (the server's room) moves to the next phase when
`waiting_for()` is empty or the phase's timeout has passed; whoever has not answered by then has dropped. The
server only ever holds ciphertexts it cannot open, masked inputs, and per survivor either its seed or (for a
participant that dropped after sharing) its mask key, never both: it learns the sum and nothing else.
Anything malformed raises ProtocolError for its sender, who is then left out; too few remaining raises
AttemptFailed, and the caller redoes the round with fresh keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tinygrad import Tensor

from py_shared.protocol.messages import ProtocolError
from py_shared.protocol.secure_messages import ForwardedShares, KeyList, UnmaskRequest
from py_shared.secure import fixed_point, masks, records, unmask
from py_shared.secure.crypto import Crypto
from py_shared.secure.graph import mask_graph, threshold
from py_shared.secure.records import OpenedShare, PeerKey, SealedShares

Phase = Literal["advertise", "share", "mask", "unmask", "done"]


class AttemptFailed(Exception):
    """This attempt cannot complete; the message says why (for the log and the participants)."""


@dataclass(frozen=True)
class Member:
    """A participant of the attempt: its server-side id, evaluation point, sample count and public keys."""

    id: str
    index: int
    samples: int
    keys: PeerKey
    commitment: bytes  # SHA-256 of its seed (records.seed_commitment)


class SecAggServer:
    """One attempt of one round's secure sum over vectors of `size` uint32 words."""

    def __init__(
        self,
        crypto: Crypto,
        task_id: str,
        round_: int,
        attempt: int,
        size: int,
        threshold_fraction: float,
        device: str | None = None,
        purpose: str = "update",
    ) -> None:
        self.crypto, self.size, self.device = crypto, size, device
        self.round, self.attempt, self.purpose = round_, attempt, purpose
        self.context = masks.context(task_id, purpose, round_, attempt)
        self.threshold_fraction = threshold_fraction
        self.phase: Phase = "advertise"
        self.advertised: dict[str, tuple[int, bytes, bytes, bytes]] = {}
        self.members: dict[str, Member] = {}
        self.by_index: dict[int, Member] = {}
        self.graph: dict[int, frozenset[int]] = {}
        self.threshold = 0
        self.sealed: dict[str, list[SealedShares]] = {}  # sender -> its records
        self.total = fixed_point.zeros(size, device)
        self.masked: set[str] = set()
        self.opened: dict[str, list[OpenedShare]] = {}  # responder -> its records
        self.survivors: list[Member] = []
        self.dropped: list[Member] = []
        self.excluded: set[str] = set()  # sent something malformed: treated as gone from then on

    def _check(self, phase: Phase, pid: str, expected: set[str]) -> Member | None:
        if self.phase != phase:
            raise ProtocolError("unexpected", f"the secure round is in its {self.phase} phase, not {phase}")
        if pid not in expected or pid in self.excluded:
            raise ProtocolError("unexpected", "this participant is not part of this phase of the secure round")
        return self.members.get(pid)

    def waiting_for(self) -> set[str]:
        """Who the current phase still waits for (empty: ready to move on)."""
        ids = {
            "share": set(self.members) - set(self.sealed),
            "mask": set(self.sealed) - self.masked,
            "unmask": {m.id for m in self.survivors} - set(self.opened),
        }
        return ids.get(self.phase, set()) - self.excluded

    def advertise(self, pid: str, samples: int, payload: bytes) -> None:
        """Take a participant's public keys for this attempt."""
        self._check("advertise", pid, {pid})
        cipher, mask, commitment = records.unpack_keys(payload)
        if cipher == mask or any(
            cipher in (c, m) or mask in (c, m) for p, (_, c, m, _) in self.advertised.items() if p != pid
        ):
            raise ProtocolError("bad_message", "each public key must be new: these are reused")
        self.advertised[pid] = (samples, cipher, mask, commitment)

    def start(self, order: Sequence[str], degree: int = 0) -> dict[str, tuple[KeyList, bytes]]:
        """Fix the participants (in `order`, a random permutation of those who advertised), their evaluation
        points and mask graph (graph.mask_graph's `degree`); returns each one's key list."""
        if len(order) < 2:
            raise AttemptFailed("a secure sum needs at least two participants")
        for i, pid in enumerate(order, start=1):
            samples, cipher, mask, commitment = self.advertised[pid]
            self.members[pid] = Member(pid, i, samples, PeerKey(i, cipher, mask), commitment)
        self.by_index = {m.index: m for m in self.members.values()}
        self.graph = mask_graph(list(self.by_index), degree)
        self.threshold = threshold(self.threshold_fraction, len(self.graph[1]))
        base = max(m.samples for m in self.members.values())
        self.phase = "share"
        out = {}
        for m in self.members.values():
            message = KeyList(
                round=self.round,
                attempt=self.attempt,
                index=m.index,
                participants=len(self.members),
                threshold=self.threshold,
                weight_base=base,
            )
            out[m.id] = (message, records.pack_peer_keys([self.by_index[v].keys for v in sorted(self.graph[m.index])]))
        return out

    def share_keys(self, pid: str, payload: bytes) -> None:
        """Take a participant's encrypted shares: exactly one record for each of its neighbours."""
        member = self._check("share", pid, set(self.members) - set(self.sealed))
        assert member is not None
        sealed = records.unpack_sealed(payload)
        if sorted(r.receiver for r in sealed) != sorted(self.graph[member.index]) or any(
            r.sender != member.index for r in sealed
        ):
            raise ProtocolError("bad_message", "share records must come from you and go to each neighbour once")
        self.sealed[pid] = sealed

    def forward(self) -> dict[str, tuple[ForwardedShares, bytes]]:
        """Close the share phase: each participant that shared gets the records its sharing neighbours sent it."""
        shared = {self.members[pid].index for pid in self.sealed}
        self._enough(shared, shared, "shared their keys")
        inbox: dict[int, list[SealedShares]] = {i: [] for i in shared}
        for records_ in self.sealed.values():
            for r in records_:
                if r.receiver in shared:
                    inbox[r.receiver].append(r)
        self.phase = "mask"
        message = ForwardedShares(round=self.round, attempt=self.attempt)
        return {self.by_index[i].id: (message, records.pack_sealed(inbox[i])) for i in shared}

    def _enough(self, group_of: set[int], present: set[int], what: str) -> None:
        """Every participant in `group_of` must have at least `threshold` of its group (itself included) in
        `present`, or its secrets could not be rebuilt."""
        for i in sorted(group_of):
            count = len((self.graph[i] | {i}) & present)
            if count < self.threshold:
                raise AttemptFailed(
                    f"only {count} of participant {i}'s group {what}; the threshold is {self.threshold}"
                )

    def masked_input(self, pid: str, payload: bytes) -> None:
        """Add a participant's masked input to the running sum (memory: one vector, however many participants)."""
        self._check("mask", pid, set(self.sealed) - self.masked)
        if len(payload) != 4 * self.size:
            raise ProtocolError(
                "wrong_length", f"a masked input has {self.size} words, this one has {len(payload) / 4:g}"
            )
        self.total = fixed_point.add(self.total, fixed_point.words(payload, self.device)).realize()
        self.masked.add(pid)

    def request_unmask(self) -> dict[str, UnmaskRequest]:
        """Close the mask phase: ask every survivor for the shares that remove the masks."""
        survivors = {self.members[pid].index for pid in self.masked}
        dropped = {self.members[pid].index for pid in self.sealed} - survivors
        self._enough(survivors | dropped, survivors, "sent a masked input")
        self.survivors = [self.by_index[i] for i in sorted(survivors)]
        self.dropped = [self.by_index[i] for i in sorted(dropped)]
        self.phase = "unmask"
        message = UnmaskRequest(
            round=self.round, attempt=self.attempt, survivors=tuple(sorted(survivors)), dropped=tuple(sorted(dropped))
        )
        return {m.id: message for m in self.survivors}

    def unmask_shares(self, pid: str, payload: bytes) -> None:
        """Take a survivor's opened shares: seeds of survivors and mask keys of dropouts in its group only."""
        member = self._check("unmask", pid, {m.id for m in self.survivors} - set(self.opened))
        assert member is not None
        group = self.graph[member.index] | {member.index}
        survivors, dropped = {m.index for m in self.survivors}, {m.index for m in self.dropped}
        opened = records.unpack_opened(payload)
        for r in opened:
            wanted = survivors if r.secret == records.SECRET_SEED else dropped
            if r.owner not in group or r.owner not in wanted:
                raise ProtocolError("bad_message", f"an opened share for participant {r.owner} was not asked for")
        if len({(r.owner, r.secret) for r in opened}) != len(opened):
            raise ProtocolError("bad_message", "an opened share is listed twice")
        self.opened[pid] = opened

    async def finish(self) -> Tensor:
        """The sum of the survivors' encoded inputs (uint32): their self masks and the dropouts' pair masks
        removed."""
        if self.phase != "unmask":
            raise AttemptFailed(f"cannot finish in the {self.phase} phase")
        self._enough(
            {m.index for m in self.survivors + self.dropped}, {self.members[p].index for p in self.opened}, "answered"
        )
        owners = {m.index: unmask.Owner(m.index, m.keys.mask_public, m.commitment) for m in self.members.values()}
        try:
            total = await unmask.remove_masks(
                self.crypto,
                self.context,
                self.total,
                [owners[m.index] for m in self.survivors],
                [owners[d.index] for d in self.dropped],
                lambda d, m: m in self.graph[d],
                {self.members[pid].index: rs for pid, rs in self.opened.items()},
                self.threshold,
            )
        except unmask.SecretLost as e:
            raise AttemptFailed(str(e)) from None
        self.phase = "done"
        return total
