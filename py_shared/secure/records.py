"""The fixed-size binary records a secure round's payloads carry: public keys, encrypted shares, opened shares.

Every record is a whole number of 32-bit words (the frame payload's unit) and is read back with its length
checked first, so a truncated or padded payload is refused with a sentence instead of misread.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from py_shared.protocol.messages import ProtocolError
from py_shared.secure.crypto import KEY_BYTES, NONCE_BYTES, TAG_BYTES
from py_shared.secure.shamir import SHARE_BYTES

INDEX = struct.Struct("<I")
SHARE_PLAINTEXT_BYTES = 2 * SHARE_BYTES  # the mask key's share, then the seed's
SECRET_SEED, SECRET_MASK_KEY = 0, 1


@dataclass(frozen=True)
class PeerKey:
    """A participant's evaluation point and public keys, as the server lists them."""

    index: int
    cipher_public: bytes
    mask_public: bytes


@dataclass(frozen=True)
class SealedShares:
    """Both key shares `sender` made for `receiver`, encrypted with their pairwise AES-GCM key."""

    sender: int
    receiver: int
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class OpenedShare:
    """A share of `owner`'s seed or mask key that a survivor hands the server for unmasking."""

    owner: int
    secret: int  # SECRET_SEED or SECRET_MASK_KEY
    share: bytes


PEER_KEY_BYTES = INDEX.size + 2 * KEY_BYTES
SEALED_BYTES = 2 * INDEX.size + NONCE_BYTES + SHARE_PLAINTEXT_BYTES + TAG_BYTES
OPENED_BYTES = 2 * INDEX.size + SHARE_BYTES + 2  # padded to whole words


def _split(payload: bytes, size: int, what: str) -> list[bytes]:
    if not payload or len(payload) % size:
        raise ProtocolError(
            "wrong_length", f"{what}: {len(payload)} bytes is not a whole number of {size}-byte records"
        )
    return [payload[i : i + size] for i in range(0, len(payload), size)]


def seed_commitment(seed: bytes) -> bytes:
    """SHA-256 of a self-mask seed: lets the server tell a correctly rebuilt seed from one a wrong share spoilt."""
    return hashlib.sha256(b"pydisco secagg seed|" + seed).digest()


def pack_keys(cipher_public: bytes, mask_public: bytes, commitment: bytes) -> bytes:
    """An advertisement's payload: both public keys and the seed's commitment."""
    return cipher_public + mask_public + commitment


def unpack_keys(payload: bytes) -> tuple[bytes, bytes, bytes]:
    """(cipher_public, mask_public, seed commitment) of an advertisement."""
    if len(payload) != 3 * KEY_BYTES:
        raise ProtocolError("wrong_length", f"advertised keys: expected {3 * KEY_BYTES} bytes, got {len(payload)}")
    return payload[:KEY_BYTES], payload[KEY_BYTES : 2 * KEY_BYTES], payload[2 * KEY_BYTES :]


def pack_peer_keys(peers: list[PeerKey]) -> bytes:
    """A key list's payload."""
    return b"".join(INDEX.pack(p.index) + p.cipher_public + p.mask_public for p in peers)


def unpack_peer_keys(payload: bytes) -> list[PeerKey]:
    """The records of a key list's payload."""
    records = _split(payload, PEER_KEY_BYTES, "key list")
    return [PeerKey(INDEX.unpack_from(r)[0], r[4 : 4 + KEY_BYTES], r[4 + KEY_BYTES :]) for r in records]


def pack_sealed(records: list[SealedShares]) -> bytes:
    """Encrypted share records, as a share_keys or forwarded_shares payload."""
    return b"".join(INDEX.pack(r.sender) + INDEX.pack(r.receiver) + r.nonce + r.ciphertext for r in records)


def unpack_sealed(payload: bytes) -> list[SealedShares]:
    """The encrypted share records of a payload."""
    out = []
    for r in _split(payload, SEALED_BYTES, "encrypted shares"):
        sender, receiver = INDEX.unpack_from(r)[0], INDEX.unpack_from(r, 4)[0]
        out.append(SealedShares(sender, receiver, r[8 : 8 + NONCE_BYTES], r[8 + NONCE_BYTES :]))
    return out


def pack_opened(records: list[OpenedShare]) -> bytes:
    """Opened share records, as an unmask_shares payload."""
    return b"".join(INDEX.pack(r.owner) + INDEX.pack(r.secret) + r.share + b"\0\0" for r in records)


def unpack_opened(payload: bytes) -> list[OpenedShare]:
    """The opened share records of a payload."""
    out = []
    for r in _split(payload, OPENED_BYTES, "opened shares"):
        owner, secret = INDEX.unpack_from(r)[0], INDEX.unpack_from(r, 4)[0]
        if secret not in (SECRET_SEED, SECRET_MASK_KEY) or r[-2:] != b"\0\0":
            raise ProtocolError("bad_message", f"opened shares: a record for participant {owner} is malformed")
        out.append(OpenedShare(owner, secret, r[8 : 8 + SHARE_BYTES]))
    return out
