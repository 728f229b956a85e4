"""Secure-round payload records: exact round trips, whole 32-bit words, and a ProtocolError for anything misshapen."""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable

import pytest

from py_shared.protocol.messages import ProtocolError
from py_shared.secure import records
from py_shared.secure.crypto import KEY_BYTES, NONCE_BYTES, TAG_BYTES
from py_shared.secure.records import (
    SECRET_MASK_KEY,
    SECRET_SEED,
    OpenedShare,
    PeerKey,
    SealedShares,
)
from py_shared.secure.shamir import SHARE_BYTES

draw = random.Random(0).randbytes
PEERS = [PeerKey(i, draw(KEY_BYTES), draw(KEY_BYTES)) for i in (1, 7, 2**32 - 1)]
SEALED = [
    SealedShares(s, r, draw(NONCE_BYTES), draw(2 * SHARE_BYTES + TAG_BYTES)) for s, r in [(1, 2), (2, 1), (0, 2**31)]
]
OPENED = [OpenedShare(o, k, draw(SHARE_BYTES)) for o, k in [(3, SECRET_SEED), (3, SECRET_MASK_KEY), (2**32 - 1, 0)]]


def test_record_sizes_are_whole_words() -> None:
    assert (records.PEER_KEY_BYTES, records.SEALED_BYTES, records.OPENED_BYTES) == (68, 168, 76)
    assert all(size % 4 == 0 for size in (records.PEER_KEY_BYTES, records.SEALED_BYTES, records.OPENED_BYTES))


def test_keys_round_trip() -> None:
    cipher, mask, commitment = draw(KEY_BYTES), draw(KEY_BYTES), records.seed_commitment(b"seed")
    assert records.pack_keys(cipher, mask, commitment) == cipher + mask + commitment
    assert records.unpack_keys(records.pack_keys(cipher, mask, commitment)) == (cipher, mask, commitment)


def test_a_seed_commitment_is_a_domain_separated_sha256() -> None:
    seed = draw(KEY_BYTES)
    assert records.seed_commitment(seed) == hashlib.sha256(b"pydisco secagg seed|" + seed).digest()
    assert records.seed_commitment(seed) != records.seed_commitment(seed[:-1] + bytes([seed[-1] ^ 1]))


@pytest.mark.parametrize("count", [1, 3])
def test_lists_round_trip(count: int) -> None:
    payload = records.pack_peer_keys(PEERS[:count])
    assert len(payload) == count * records.PEER_KEY_BYTES and records.unpack_peer_keys(payload) == PEERS[:count]
    payload = records.pack_sealed(SEALED[:count])
    assert len(payload) == count * records.SEALED_BYTES and records.unpack_sealed(payload) == SEALED[:count]
    payload = records.pack_opened(OPENED[:count])
    assert len(payload) == count * records.OPENED_BYTES and records.unpack_opened(payload) == OPENED[:count]


def test_indices_are_little_endian_u32() -> None:
    payload = records.pack_peer_keys(PEERS[1:2])
    assert payload[:4] == b"\x07\0\0\0" and payload[4:] == PEERS[1].cipher_public + PEERS[1].mask_public
    sealed = records.pack_sealed(SEALED[2:])
    assert struct.unpack_from("<II", sealed) == (0, 2**31) and sealed[8 : 8 + NONCE_BYTES] == SEALED[2].nonce
    opened = records.pack_opened(OPENED[1:2])
    assert struct.unpack_from("<II", opened) == (3, SECRET_MASK_KEY) and opened[-2:] == b"\0\0"


def _refused(unpack: Callable[[bytes], object], payload: bytes, code: str, words: str) -> None:
    with pytest.raises(ProtocolError, match=words) as e:
        unpack(payload)
    assert e.value.code == code


@pytest.mark.parametrize("size", [0, 1, 64, 92, 95, 97, 100, 128])
def test_keys_of_the_wrong_size_are_refused(size: int) -> None:
    _refused(records.unpack_keys, bytes(size), "wrong_length", f"expected {3 * KEY_BYTES} bytes, got {size}")


@pytest.mark.parametrize(
    ("unpack", "payload", "what"),
    [
        (records.unpack_peer_keys, records.pack_peer_keys(PEERS), "key list"),
        (records.unpack_sealed, records.pack_sealed(SEALED), "encrypted shares"),
        (records.unpack_opened, records.pack_opened(OPENED), "opened shares"),
    ],
    ids=["peer_keys", "sealed", "opened"],
)
def test_empty_truncated_or_padded_lists_are_refused(
    unpack: Callable[[bytes], object], payload: bytes, what: str
) -> None:
    for bad in (b"", payload[:-4], payload[:-1], payload[:3], payload + bytes(4)):
        _refused(unpack, bad, "wrong_length", f"{what}: {len(bad)} bytes is not a whole number of")


@pytest.mark.parametrize("secret", [2, 3, 2**32 - 1])
def test_an_opened_share_of_an_unknown_secret_is_refused(secret: int) -> None:
    payload = bytearray(records.pack_opened(OPENED))
    struct.pack_into("<I", payload, records.OPENED_BYTES + 4, secret)
    _refused(records.unpack_opened, bytes(payload), "bad_message", "a record for participant 3 is malformed")


def test_an_opened_share_with_padding_set_is_refused() -> None:
    payload = bytearray(records.pack_opened(OPENED))
    payload[-1] = 1
    _refused(records.unpack_opened, bytes(payload), "bad_message", f"participant {2**32 - 1} is malformed")
