"""The messages of a secure-aggregation round (py_shared/secure), decoded by messages.decode_message.

Per round: every participant advertises two public keys once its update is ready; the server answers each with
its neighbours' keys; each sends its key shares encrypted for its neighbours; the server forwards them; each
sends its masked input; the server asks the survivors for the shares that unmasking needs; then it sends the
result and the new global model. A failed attempt is redone (SecureAbort) with fresh keys. Lists of keys and
shares travel as fixed-size binary records in the payload (py_shared/secure/records.py), not in the header.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

MAX_SAMPLES = 10**9


def round_and_samples_problems(round_: int, samples: int) -> Iterator[str]:
    """What is wrong with a message's round number and sample count (plain updates and advertisements)."""
    if round_ < 0:
        yield "round: must not be negative"
    if not 1 <= samples <= MAX_SAMPLES:
        yield f"samples: must be between 1 and {MAX_SAMPLES}"


Purpose = Literal["update", "statistics"]


@dataclass(frozen=True, kw_only=True)
class AdvertiseKeys:
    """Client: my input for `round` is ready (payload: my public share-encryption and mask keys and my seed's
    commitment, 32 bytes each); `purpose` says whether it is a model update or feature statistics."""

    kind: Literal["advertise_keys"] = "advertise_keys"
    round: int
    samples: int
    purpose: Purpose = "update"

    def problems(self) -> Iterator[str]:
        return round_and_samples_problems(self.round, self.samples)


@dataclass(frozen=True, kw_only=True)
class KeyList:
    """Server: this attempt's participants; `index` is the receiver's (payload: its neighbours' key records)."""

    kind: Literal["key_list"] = "key_list"
    round: int
    attempt: int
    index: int
    participants: int
    threshold: int
    weight_base: int  # the largest sample count among the participants: a weight is samples / weight_base


@dataclass(frozen=True, kw_only=True)
class ShareKeys:
    """Client: my key shares, one encrypted record per neighbour (payload)."""

    kind: Literal["share_keys"] = "share_keys"
    round: int
    attempt: int


@dataclass(frozen=True, kw_only=True)
class ForwardedShares:
    """Server: the encrypted share records addressed to the receiver (payload); their senders are the survivors."""

    kind: Literal["forwarded_shares"] = "forwarded_shares"
    round: int
    attempt: int


@dataclass(frozen=True, kw_only=True)
class MaskedInput:
    """Client: my encoded update plus my masks, uint32 words (payload)."""

    kind: Literal["masked_input"] = "masked_input"
    round: int
    attempt: int


@dataclass(frozen=True, kw_only=True)
class UnmaskRequest:
    """Server: who sent a masked input (their seeds are rebuilt) and who dropped after sharing (mask keys)."""

    kind: Literal["unmask_request"] = "unmask_request"
    round: int
    attempt: int
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class UnmaskShares:
    """Client: the shares asked for, as plaintext records (payload)."""

    kind: Literal["unmask_shares"] = "unmask_shares"
    round: int
    attempt: int


@dataclass(frozen=True, kw_only=True)
class SecureAbort:
    """Server: this attempt failed (too few left, or bad shares); advertise fresh keys to redo the round."""

    kind: Literal["secure_abort"] = "secure_abort"
    round: int
    attempt: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class SecureResult:
    """Server: `round` closed with the sum of `survivors` of `participants` inputs; the new model follows.

    noise_multiplier is the distributed-DP noise the sum carries, relative to one participant's clip norm (0
    without distributed DP): what each participant's accountant composes."""

    kind: Literal["secure_result"] = "secure_result"
    round: int
    participants: int
    survivors: int
    noise_multiplier: float


@dataclass(frozen=True, kw_only=True)
class SharedStatistics:
    """Server: the tabular features' means and standard deviations, from the secure sum of everyone's moments."""

    kind: Literal["shared_statistics"] = "shared_statistics"
    mean: tuple[float, ...]
    std: tuple[float, ...]
    participants: int

    def problems(self) -> Iterator[str]:
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            yield "std: one positive value per mean"


SecureMessage = (
    AdvertiseKeys
    | KeyList
    | ShareKeys
    | ForwardedShares
    | MaskedInput
    | UnmaskRequest
    | UnmaskShares
    | SecureAbort
    | SecureResult
    | SharedStatistics
)
CARRY_PAYLOAD = ("advertise_keys", "key_list", "share_keys", "forwarded_shares", "masked_input", "unmask_shares")
