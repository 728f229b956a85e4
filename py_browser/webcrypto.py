"""py_shared's Crypto interface in the browser, through WebCrypto (`crypto.subtle`) and the Pyodide FFI."""

from __future__ import annotations

import base64
from typing import Any

import js
from pyodide.ffi import JsException, to_js

from py_shared.secure.crypto import KEY_BYTES, NONCE_BYTES, TAG_BYTES, CryptoError

# PKCS #8 wrapping of a raw X25519 private key (RFC 8410): WebCrypto imports X25519 private keys no other way
X25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b656e04220420")
HKDF_MAX_BYTES = 255 * 32  # RFC 5869: at most 255 blocks of SHA-256 output
RANDOM_CHUNK = 65536  # getRandomValues refuses more per call (QuotaExceededError)
LOW_ORDER = "the peer's X25519 public key is of low order: the shared secret would be zero"


def _algorithm(**fields: Any) -> Any:
    """A plain JS object (not a Map), as WebCrypto expects; bytes values become Uint8Arrays."""
    return to_js(fields, dict_converter=js.Object.fromEntries)


def _check_length(name: str, value: bytes, expected: int) -> None:
    if len(value) != expected:
        raise CryptoError(f"the {name} must be {expected} bytes long, not {len(value)}")


async def _x25519_private_key(private: bytes, extractable: bool) -> Any:
    _check_length("X25519 private key", private, KEY_BYTES)
    return await js.crypto.subtle.importKey(
        "pkcs8", to_js(X25519_PKCS8_PREFIX + private), _algorithm(name="X25519"), extractable, to_js(["deriveBits"])
    )


async def _aes_key(key: bytes, algorithm: str, usages: list[str]) -> Any:
    _check_length("AES-256 key", key, KEY_BYTES)
    return await js.crypto.subtle.importKey("raw", to_js(key), algorithm, False, to_js(usages))


def _gcm(nonce: bytes, aad: bytes) -> Any:
    _check_length("AES-GCM nonce", nonce, NONCE_BYTES)
    return _algorithm(name="AES-GCM", iv=nonce, additionalData=aad, tagLength=8 * TAG_BYTES)


class WebCrypto:
    """X25519, HKDF-SHA256, AES-256-GCM and AES-256-CTR from `crypto.subtle`; randomness from getRandomValues."""

    def random_bytes(self, length: int) -> bytes:
        """`length` bytes from the browser's CSPRNG."""
        if length < 0:
            raise CryptoError(f"cannot draw a negative number of random bytes ({length})")
        chunks: list[bytes] = []
        for start in range(0, length, RANDOM_CHUNK):
            array = js.Uint8Array.new(min(RANDOM_CHUNK, length - start))
            js.crypto.getRandomValues(array)
            chunks.append(array.to_bytes())
        return b"".join(chunks)

    async def x25519_public(self, private: bytes) -> bytes:
        """The 32-byte public key of a 32-byte X25519 private key."""
        # WebCrypto has no "public key of this private key"; its JWK export carries it as `x`
        jwk = await js.crypto.subtle.exportKey("jwk", await _x25519_private_key(private, extractable=True))
        x = str(jwk.x)
        return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))

    async def x25519_shared(self, private: bytes, peer_public: bytes) -> bytes:
        """The 32-byte X25519 shared secret; raises CryptoError for a low-order peer key (all-zero secret)."""
        _check_length("X25519 public key", peer_public, KEY_BYTES)
        subtle = js.crypto.subtle
        key = await _x25519_private_key(private, extractable=False)
        try:
            peer = await subtle.importKey("raw", to_js(peer_public), _algorithm(name="X25519"), True, to_js([]))
        except JsException as e:
            raise CryptoError(f"the peer's X25519 public key cannot be used: {e}") from e
        try:
            bits = await subtle.deriveBits(_algorithm(name="X25519", public=peer), key, 8 * KEY_BYTES)
        except JsException as e:  # the spec makes an all-zero secret an OperationError
            raise CryptoError(LOW_ORDER) from e
        shared = bits.to_bytes()
        if shared == bytes(KEY_BYTES):
            raise CryptoError(LOW_ORDER)
        return shared

    async def hkdf_sha256(self, secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
        """HKDF-SHA256 of `secret` into `length` bytes (1 to 8160); an empty salt means HashLen zeros."""
        if not 1 <= length <= HKDF_MAX_BYTES:
            raise CryptoError(f"HKDF-SHA256 yields 1 to {HKDF_MAX_BYTES} bytes, not {length}")
        subtle = js.crypto.subtle
        key = await subtle.importKey("raw", to_js(secret), "HKDF", False, to_js(["deriveBits"]))
        algorithm = _algorithm(name="HKDF", hash="SHA-256", salt=salt, info=info)
        return (await subtle.deriveBits(algorithm, key, 8 * length)).to_bytes()

    async def aes_gcm_encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """AES-256-GCM: the ciphertext followed by its 16-byte tag."""
        aes = await _aes_key(key, "AES-GCM", ["encrypt"])
        return (await js.crypto.subtle.encrypt(_gcm(nonce, aad), aes, to_js(plaintext))).to_bytes()

    async def aes_gcm_decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """The plaintext of an AES-256-GCM ciphertext (with its tag); raises CryptoError if it is not authentic."""
        aes = await _aes_key(key, "AES-GCM", ["decrypt"])
        algorithm = _gcm(nonce, aad)
        if len(ciphertext) < TAG_BYTES:
            raise CryptoError(f"an AES-GCM ciphertext holds at least its {TAG_BYTES}-byte tag, not {len(ciphertext)}")
        try:
            plaintext = await js.crypto.subtle.decrypt(algorithm, aes, to_js(ciphertext))
        except JsException as e:
            raise CryptoError("the AES-GCM ciphertext is not authentic (wrong key, nonce, data or tag)") from e
        return plaintext.to_bytes()

    async def aes_ctr_keystream(self, key: bytes, length: int) -> bytes:
        """`length` bytes of AES-256-CTR keystream from an all-zero 128-bit counter."""
        aes = await _aes_key(key, "AES-CTR", ["encrypt"])
        if length < 0:
            raise CryptoError(f"a keystream cannot have a negative length ({length})")
        # the whole block is the counter, as in `cryptography`'s CTR mode; the zeros never cross the FFI
        algorithm = _algorithm(name="AES-CTR", counter=bytes(16), length=128)
        return (await js.crypto.subtle.encrypt(algorithm, aes, js.Uint8Array.new(length))).to_bytes()
