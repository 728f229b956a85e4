"""The cryptographic primitives secure aggregation needs, behind one small interface.

Two backends implement it and must produce identical bytes for identical inputs: WebCrypto in the browser
(py_browser/webcrypto.py) and the `cryptography` package on CPython (py_cpython/crypto.py). Nothing here is
home-made: X25519 key agreement (RFC 7748), HKDF-SHA256 (RFC 5869), AES-256-GCM for the encrypted key shares,
AES-256-CTR as the mask generator, and the platform's CSPRNG. WebCrypto answers with promises, so every
operation but `random_bytes` is a coroutine.
"""

from __future__ import annotations

from typing import Protocol

KEY_BYTES = 32  # X25519 keys, AES-256 keys, seeds
NONCE_BYTES = 12  # AES-GCM nonces
TAG_BYTES = 16  # AES-GCM authentication tags


class CryptoError(ValueError):
    """A ciphertext failed authentication, or a key or input has the wrong form."""


class Crypto(Protocol):
    """One backend of the primitives; all byte strings are raw (no encoding, no DER)."""

    def random_bytes(self, length: int) -> bytes:
        """`length` bytes from the platform's cryptographically secure generator."""
        ...

    async def x25519_public(self, private: bytes) -> bytes:
        """The 32-byte public key of a 32-byte X25519 private key."""
        ...

    async def x25519_shared(self, private: bytes, peer_public: bytes) -> bytes:
        """The 32-byte X25519 shared secret of our private key and the peer's public key."""
        ...

    async def hkdf_sha256(self, secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
        """HKDF-SHA256 (extract then expand) of `secret` into `length` bytes."""
        ...

    async def aes_gcm_encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """AES-256-GCM: the ciphertext followed by its 16-byte tag."""
        ...

    async def aes_gcm_decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """The plaintext of an AES-256-GCM ciphertext (with its tag); raises CryptoError if it is not authentic."""
        ...

    async def aes_ctr_keystream(self, key: bytes, length: int) -> bytes:
        """`length` bytes of AES-256-CTR keystream: the encryption of zeros from an all-zero 128-bit counter."""
        ...
