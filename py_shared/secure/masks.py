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


async def _keystream_words(crypto: Crypto, key: bytes, size: int, device: str | None) -> Tensor:
    return fixed_point.words(await crypto.aes_ctr_keystream(key, 4 * size), device)


async def pair_mask(
    crypto: Crypto, private: bytes, peer_public: bytes, context: bytes, size: int, device: str | None = None
) -> Tensor:
    """The mask u and v share: the same from (u's private, v's public) and (v's private, u's public)."""
    secret = await crypto.x25519_shared(private, peer_public)
    key = await crypto.hkdf_sha256(secret, b"", PAIR_INFO + context, KEY_BYTES)
    return await _keystream_words(crypto, key, size, device)


async def self_mask(crypto: Crypto, seed: bytes, context: bytes, size: int, device: str | None = None) -> Tensor:
    """The mask a participant adds from its own seed; removed once the seed is rebuilt from its shares."""
    key = await crypto.hkdf_sha256(seed, b"", SELF_INFO + context, KEY_BYTES)
    return await _keystream_words(crypto, key, size, device)


async def share_key(crypto: Crypto, private: bytes, peer_public: bytes, context: bytes) -> bytes:
    """The AES-256-GCM key that encrypts the key shares between two participants."""
    secret = await crypto.x25519_shared(private, peer_public)
    return await crypto.hkdf_sha256(secret, b"", SHARE_INFO + context, KEY_BYTES)


def context(task_id: str, purpose: str, round_: int, attempt: int) -> bytes:
    """What binds keys, masks and ciphertexts to one attempt of one sum (`purpose`) of one round of one task."""
    return f"{task_id}|{purpose}|{round_}|{attempt}".encode()


def signed_sum(own: int, masks: dict[int, Tensor], start: Tensor) -> Tensor:
    """`start` plus each pair mask, added when `own` < the peer's index and subtracted otherwise (mod 2^32)."""
    total = start
    for peer, mask in sorted(masks.items()):
        total = fixed_point.add(total, mask) if own < peer else fixed_point.subtract(total, mask)
        total = total.realize()
    return total
