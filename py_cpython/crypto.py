"""py_shared's Crypto interface on CPython, through the `cryptography` package (OpenSSL)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from py_shared.secure.crypto import KEY_BYTES, NONCE_BYTES, TAG_BYTES, CryptoError

HKDF_MAX_BYTES = 255 * 32  # RFC 5869: at most 255 blocks of SHA-256 output
# Above this, the work moves to a thread: a server's event loop must not stall for a large model's mask.
THREAD_THRESHOLD = 1 << 20


def _check_length(name: str, value: bytes, expected: int) -> None:
    if len(value) != expected:
        raise CryptoError(f"the {name} must be {expected} bytes long, not {len(value)}")


async def _run(work: Callable[[], bytes], size: int) -> bytes:
    return await asyncio.to_thread(work) if size > THREAD_THRESHOLD else work()


class CPythonCrypto:
    """X25519, HKDF-SHA256, AES-256-GCM and AES-256-CTR from `cryptography`; randomness from `secrets`."""

    def random_bytes(self, length: int) -> bytes:
        """`length` bytes from the operating system's CSPRNG."""
        if length < 0:
            raise CryptoError(f"cannot draw a negative number of random bytes ({length})")
        return secrets.token_bytes(length)

    async def x25519_public(self, private: bytes) -> bytes:
        """The 32-byte public key of a 32-byte X25519 private key."""
        _check_length("X25519 private key", private, KEY_BYTES)
        public = X25519PrivateKey.from_private_bytes(private).public_key()
        return public.public_bytes(Encoding.Raw, PublicFormat.Raw)

    async def x25519_shared(self, private: bytes, peer_public: bytes) -> bytes:
        """The 32-byte X25519 shared secret; raises CryptoError for a low-order peer key (all-zero secret)."""
        _check_length("X25519 private key", private, KEY_BYTES)
        _check_length("X25519 public key", peer_public, KEY_BYTES)
        try:
            shared = X25519PrivateKey.from_private_bytes(private).exchange(
                X25519PublicKey.from_public_bytes(peer_public)
            )
        except ValueError as e:  # OpenSSL refuses the all-zero result itself
            raise CryptoError("the peer's X25519 public key is of low order: the shared secret would be zero") from e
        if shared == bytes(KEY_BYTES):
            raise CryptoError("the peer's X25519 public key is of low order: the shared secret would be zero")
        return shared

    async def hkdf_sha256(self, secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
        """HKDF-SHA256 of `secret` into `length` bytes (1 to 8160); an empty salt means HashLen zeros."""
        if not 1 <= length <= HKDF_MAX_BYTES:
            raise CryptoError(f"HKDF-SHA256 yields 1 to {HKDF_MAX_BYTES} bytes, not {length}")
        # b"" and None agree: HMAC pads any key shorter than its block with zeros, as WebCrypto does
        return HKDF(hashes.SHA256(), length, salt, info).derive(secret)

    async def aes_gcm_encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """AES-256-GCM: the ciphertext followed by its 16-byte tag."""
        _check_length("AES-256 key", key, KEY_BYTES)
        _check_length("AES-GCM nonce", nonce, NONCE_BYTES)
        return await _run(lambda: AESGCM(key).encrypt(nonce, plaintext, aad), len(plaintext))

    async def aes_gcm_decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """The plaintext of an AES-256-GCM ciphertext (with its tag); raises CryptoError if it is not authentic."""
        _check_length("AES-256 key", key, KEY_BYTES)
        _check_length("AES-GCM nonce", nonce, NONCE_BYTES)
        if len(ciphertext) < TAG_BYTES:
            raise CryptoError(f"an AES-GCM ciphertext holds at least its {TAG_BYTES}-byte tag, not {len(ciphertext)}")

        def decrypt() -> bytes:
            try:
                return AESGCM(key).decrypt(nonce, ciphertext, aad)
            except InvalidTag as e:
                raise CryptoError("the AES-GCM ciphertext is not authentic (wrong key, nonce, data or tag)") from e

        return await _run(decrypt, len(ciphertext))

    async def aes_ctr_keystream(self, key: bytes, length: int) -> bytes:
        """`length` bytes of AES-256-CTR keystream from an all-zero 128-bit counter."""
        _check_length("AES-256 key", key, KEY_BYTES)
        if length < 0:
            raise CryptoError(f"a keystream cannot have a negative length ({length})")

        def keystream() -> bytes:
            return Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor().update(bytes(length))

        return await _run(keystream, length)
