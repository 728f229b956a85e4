"""CPythonCrypto against published known-answer vectors, and its refusals of malformed or forged input."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from py_cpython.crypto import CPythonCrypto
from py_shared.secure.crypto import CryptoError

T = TypeVar("T")
crypto = CPythonCrypto()
h = bytes.fromhex


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


# RFC 7748 section 6.1: Alice and Bob
ALICE_PRIVATE = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIVATE = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

# RFC 7748 section 5.2: (scalar, u-coordinate, output); the second u has its top bit set, which must be ignored
X25519_VECTORS = [
    (
        h("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
        h("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"),
        h("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
    ),
    (
        h("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
        h("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493"),
        h("95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
    ),
]

# The McGrew-Viega GCM specification, test case 16 (AES-256, 60-byte plaintext, 20-byte AAD)
GCM_KEY = h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
GCM_NONCE = h("cafebabefacedbaddecaf888")
GCM_PLAINTEXT = h(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
)
GCM_AAD = h("feedfacedeadbeeffeedfacedeadbeefabaddad2")
GCM_CIPHERTEXT = h(
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
)
GCM_TAG = h("76fc6ece0f4e1768cddf8853bb2d551b")

# NIST SP 800-38A F.5.5, CTR-AES256.Encrypt
CTR_KEY = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
CTR_COUNTER = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
CTR_PLAINTEXT = h(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
CTR_CIPHERTEXT = h(
    "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
    "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
)


def test_random_bytes() -> None:
    assert crypto.random_bytes(0) == b""
    draws = {crypto.random_bytes(32) for _ in range(8)}
    assert len(draws) == 8 and all(len(d) == 32 for d in draws)
    assert len(crypto.random_bytes(100_000)) == 100_000


def test_x25519_rfc7748_alice_and_bob() -> None:
    assert run(crypto.x25519_public(ALICE_PRIVATE)) == ALICE_PUBLIC
    assert run(crypto.x25519_public(BOB_PRIVATE)) == BOB_PUBLIC
    assert run(crypto.x25519_shared(ALICE_PRIVATE, BOB_PUBLIC)) == SHARED
    assert run(crypto.x25519_shared(BOB_PRIVATE, ALICE_PUBLIC)) == SHARED


@pytest.mark.parametrize(("scalar", "u", "expected"), X25519_VECTORS)
def test_x25519_rfc7748_function_vectors(scalar: bytes, u: bytes, expected: bytes) -> None:
    assert run(crypto.x25519_shared(scalar, u)) == expected


@pytest.mark.parametrize("low_order", [bytes(32), (1).to_bytes(32, "little")])
def test_x25519_refuses_a_low_order_peer_key(low_order: bytes) -> None:
    with pytest.raises(CryptoError, match="low order"):
        run(crypto.x25519_shared(ALICE_PRIVATE, low_order))


def test_x25519_refuses_wrong_lengths() -> None:
    with pytest.raises(CryptoError, match="private key must be 32 bytes long, not 31"):
        run(crypto.x25519_public(ALICE_PRIVATE[:31]))
    with pytest.raises(CryptoError, match="public key must be 32 bytes long, not 33"):
        run(crypto.x25519_shared(ALICE_PRIVATE, BOB_PUBLIC + b"\0"))


def test_hkdf_rfc5869() -> None:
    ikm = bytes([0x0B]) * 22
    # test case 1
    okm = run(crypto.hkdf_sha256(ikm, h("000102030405060708090a0b0c"), h("f0f1f2f3f4f5f6f7f8f9"), 42))
    assert okm == h("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    # test case 3: no salt (HashLen zeros) and no info
    okm = run(crypto.hkdf_sha256(ikm, b"", b"", 42))
    assert okm == h("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    assert run(crypto.hkdf_sha256(ikm, bytes(32), b"", 42)) == okm


@pytest.mark.parametrize("length", [0, 255 * 32 + 1])
def test_hkdf_refuses_impossible_lengths(length: int) -> None:
    with pytest.raises(CryptoError, match="HKDF-SHA256 yields"):
        run(crypto.hkdf_sha256(b"secret", b"", b"", length))


def test_aes_gcm_known_answer_and_round_trip() -> None:
    sealed = run(crypto.aes_gcm_encrypt(GCM_KEY, GCM_NONCE, GCM_PLAINTEXT, GCM_AAD))
    assert sealed == GCM_CIPHERTEXT + GCM_TAG
    assert run(crypto.aes_gcm_decrypt(GCM_KEY, GCM_NONCE, sealed, GCM_AAD)) == GCM_PLAINTEXT
    assert (
        run(crypto.aes_gcm_decrypt(GCM_KEY, GCM_NONCE, run(crypto.aes_gcm_encrypt(GCM_KEY, GCM_NONCE, b"", b"")), b""))
        == b""
    )


@pytest.mark.parametrize("part", ["ciphertext", "tag", "aad", "nonce", "key"])
def test_aes_gcm_refuses_anything_tampered(part: str) -> None:
    sealed, aad, nonce, key = (
        bytearray(GCM_CIPHERTEXT + GCM_TAG),
        bytearray(GCM_AAD),
        bytearray(GCM_NONCE),
        bytearray(GCM_KEY),
    )
    target = {"ciphertext": sealed, "tag": sealed, "aad": aad, "nonce": nonce, "key": key}[part]
    target[-1 if part == "tag" else 0] ^= 1
    with pytest.raises(CryptoError, match="not authentic"):
        run(crypto.aes_gcm_decrypt(bytes(key), bytes(nonce), bytes(sealed), bytes(aad)))


def test_aes_gcm_refuses_malformed_input() -> None:
    with pytest.raises(CryptoError, match="AES-256 key must be 32 bytes long, not 16"):
        run(crypto.aes_gcm_encrypt(GCM_KEY[:16], GCM_NONCE, b"x", b""))
    with pytest.raises(CryptoError, match="nonce must be 12 bytes long, not 16"):
        run(crypto.aes_gcm_encrypt(GCM_KEY, GCM_NONCE + bytes(4), b"x", b""))
    with pytest.raises(CryptoError, match="nonce must be 12 bytes long, not 11"):
        run(crypto.aes_gcm_decrypt(GCM_KEY, GCM_NONCE[:11], GCM_CIPHERTEXT + GCM_TAG, GCM_AAD))
    with pytest.raises(CryptoError, match="at least its 16-byte tag"):
        run(crypto.aes_gcm_decrypt(GCM_KEY, GCM_NONCE, GCM_TAG[:15], b""))


def ecb_counter_blocks(key: bytes, blocks: int) -> bytes:
    """AES-256 of the 128-bit big-endian counters 0, 1, 2, ...: what CTR mode's keystream is by definition."""
    counters = b"".join(i.to_bytes(16, "big") for i in range(blocks))
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(counters)


def test_aes_ctr_nist_sp800_38a() -> None:
    # the NIST vector starts from a non-zero counter, so it checks the mode itself, which our keystream relies on
    encryptor = Cipher(algorithms.AES(CTR_KEY), modes.CTR(CTR_COUNTER)).encryptor()
    assert encryptor.update(CTR_PLAINTEXT) == CTR_CIPHERTEXT


@pytest.mark.parametrize("length", [0, 1, 16, 64, 100, 4097])
def test_aes_ctr_keystream_is_aes_of_counters_from_zero(length: int) -> None:
    expected = ecb_counter_blocks(CTR_KEY, -(-length // 16))[:length]
    assert run(crypto.aes_ctr_keystream(CTR_KEY, length)) == expected


def test_aes_ctr_keystream_of_4_mb_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threaded: list[object] = []

    async def to_thread(work: Callable[[], bytes]) -> bytes:
        threaded.append(work)
        return await real_to_thread(work)

    real_to_thread = asyncio.to_thread
    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    length = 4 << 20
    stream = run(crypto.aes_ctr_keystream(CTR_KEY, length))
    assert len(threaded) == 1
    assert len(stream) == length
    assert stream[:64] == ecb_counter_blocks(CTR_KEY, 4)
    assert stream[-16:] == ecb_counter_blocks(CTR_KEY, length // 16)[-16:]
    # a prefix of a longer keystream is the shorter keystream
    assert run(crypto.aes_ctr_keystream(CTR_KEY, 1000)) == stream[:1000]


def test_aes_ctr_refuses_malformed_input() -> None:
    with pytest.raises(CryptoError, match="AES-256 key must be 32 bytes long, not 24"):
        run(crypto.aes_ctr_keystream(CTR_KEY[:24], 16))
    with pytest.raises(CryptoError, match="negative length"):
        run(crypto.aes_ctr_keystream(CTR_KEY, -1))
