"""Masks and keys of a secure sum, derived the same way by clients and server from X25519 secrets.

Pairwise masks: u and v agree on a key with X25519 (u's mask key, v's public mask key), expand it with
HKDF-SHA256 into an AES-256 key, and use its CTR keystream as a uint32 vector; the lower index adds it, the
higher subtracts it, so pairs cancel in the sum. Self masks come from each participant's random seed the same
way. Every derivation is bound to the round's context (task, round, attempt), so no mask is ever reused.
"""

from __future__ import annotations

from tinygrad import Tensor

from py_shared.secure import fixed_point
from py_shared.secure.crypto import KEY_BYTES, Crypto

PAIR_INFO = b"pydisco secagg pair mask|"
SELF_INFO = b"pydisco secagg self mask|"
SHARE_INFO = b"pydisco secagg share key|"


BATCH = 8  # masks folded in per reduction: one kernel for several masks, memory of a few vectors


async def pair_mask(crypto: Crypto, private: bytes, peer_public: bytes, context: bytes, size: int) -> bytes:
    """The mask u and v share (`size` words): the same from (u's private, v's public) and (v's private, u's
    public)."""
    secret = await crypto.x25519_shared(private, peer_public)
    key = await crypto.hkdf_sha256(secret, b"", PAIR_INFO + context, KEY_BYTES)
    return await crypto.aes_ctr_keystream(key, 4 * size)


async def self_mask(crypto: Crypto, seed: bytes, context: bytes, size: int) -> bytes:
    """The mask a participant adds from its own seed; removed once the seed is rebuilt from its shares."""
    key = await crypto.hkdf_sha256(seed, b"", SELF_INFO + context, KEY_BYTES)
    return await crypto.aes_ctr_keystream(key, 4 * size)


async def share_key(crypto: Crypto, private: bytes, peer_public: bytes, context: bytes) -> bytes:
    """The AES-256-GCM key that encrypts the key shares between two participants."""
    secret = await crypto.x25519_shared(private, peer_public)
    return await crypto.hkdf_sha256(secret, b"", SHARE_INFO + context, KEY_BYTES)


def context(task_id: str, purpose: str, round_: int, attempt: int) -> bytes:
    """What binds keys, masks and ciphertexts to one attempt of one sum (`purpose`) of one round of one task."""
    return f"{task_id}|{purpose}|{round_}|{attempt}".encode()


class MaskSum:
    """A uint32 vector to which masks are added and subtracted mod 2^32, several per kernel: tinygrad's fixed
    cost per operation would otherwise dominate, one operation per mask."""

    def __init__(self, start: Tensor) -> None:
        self.total = start.realize()
        self.size, self.device = int(start.shape[0]), str(start.device)
        self.plus: list[bytes] = []
        self.minus: list[bytes] = []

    def add(self, mask: bytes) -> None:
        self.plus.append(mask)
        self._fold_if_full()

    def subtract(self, mask: bytes) -> None:
        self.minus.append(mask)
        self._fold_if_full()

    def _fold_if_full(self) -> None:
        if len(self.plus) + len(self.minus) >= BATCH:
            self._fold()

    def _stacked(self, masks: list[bytes]) -> Tensor:
        return fixed_point.words(b"".join(masks), self.device).reshape(len(masks), self.size).sum(0)

    def _fold(self) -> None:
        total = self.total
        if self.plus:
            total = fixed_point.add(total, self._stacked(self.plus))
        if self.minus:
            total = fixed_point.subtract(total, self._stacked(self.minus))
        self.total, self.plus, self.minus = total.realize(), [], []

    def result(self) -> Tensor:
        """The vector with every mask so far applied."""
        self._fold()
        return self.total
