"""Every Crypto primitive applied to fixed inputs, as hex: run on WebCrypto in a page worker and on CPython.

Sent as source into a page worker by test_crypto.py, which runs `crypto_outputs` on CPythonCrypto too and
compares the two byte for byte. A refusal is recorded as "CryptoError: <message>", so refusals must agree too.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from py_shared.secure.crypto import Crypto, CryptoError


def pattern(length: int, seed: int) -> bytes:
    """Deterministic filler bytes, so large inputs need not travel as JSON."""
    return bytes((i * 131 + seed * 17 + (i >> 8)) % 256 for i in range(length))


async def _outcome(operation: Awaitable[bytes]) -> str:
    try:
        return (await operation).hex()
    except CryptoError as e:
        return f"CryptoError: {e}"


async def crypto_outputs(crypto: Crypto, vectors: dict[str, Any]) -> dict[str, str]:
    """The hex output (or the refusal) of each primitive on each input of `vectors` (hex strings)."""
    h = bytes.fromhex
    out: dict[str, str] = {}
    for i, private in enumerate(vectors["x25519_private"]):
        out[f"x25519_public/{i}"] = await _outcome(crypto.x25519_public(h(private)))
    for i, (private, peer) in enumerate(vectors["x25519_pairs"]):
        out[f"x25519_shared/{i}"] = await _outcome(crypto.x25519_shared(h(private), h(peer)))
    for i, (secret, salt, info, length) in enumerate(vectors["hkdf"]):
        out[f"hkdf/{i}"] = await _outcome(crypto.hkdf_sha256(h(secret), h(salt), h(info), length))

    for i, (key, nonce, plaintext, aad) in enumerate(vectors["gcm"]):
        sealed = await crypto.aes_gcm_encrypt(h(key), h(nonce), h(plaintext), h(aad))
        out[f"gcm/{i}"] = sealed.hex()
        out[f"gcm_round_trip/{i}"] = await _outcome(crypto.aes_gcm_decrypt(h(key), h(nonce), sealed, h(aad)))
        tampered = bytearray(sealed)
        tampered[len(tampered) // 2] ^= 0x80
        out[f"gcm_tampered/{i}"] = await _outcome(crypto.aes_gcm_decrypt(h(key), h(nonce), bytes(tampered), h(aad)))
        out[f"gcm_wrong_aad/{i}"] = await _outcome(crypto.aes_gcm_decrypt(h(key), h(nonce), sealed, h(aad) + b"!"))
    large_key, large_nonce = pattern(32, 1), pattern(12, 2)
    large = await crypto.aes_gcm_encrypt(large_key, large_nonce, pattern(100_000, 3), b"header")
    out["gcm_large"] = large.hex()
    out["gcm_large_round_trip"] = await _outcome(crypto.aes_gcm_decrypt(large_key, large_nonce, large, b"header"))
    for i, (key, nonce, sealed, aad) in enumerate(vectors["gcm_open"]):
        out[f"gcm_open/{i}"] = await _outcome(crypto.aes_gcm_decrypt(h(key), h(nonce), h(sealed), h(aad)))

    for key in vectors["ctr_keys"]:
        for length in vectors["ctr_lengths"]:
            out[f"ctr/{key[:8]}/{length}"] = await _outcome(crypto.aes_ctr_keystream(h(key), length))

    # malformed input must be refused alike
    key, nonce = pattern(32, 4), pattern(12, 5)
    out["refuse/private_31"] = await _outcome(crypto.x25519_public(key[:31]))
    out["refuse/public_33"] = await _outcome(crypto.x25519_shared(key, key + b"\0"))
    out["refuse/hkdf_0"] = await _outcome(crypto.hkdf_sha256(key, b"", b"", 0))
    out["refuse/hkdf_8161"] = await _outcome(crypto.hkdf_sha256(key, b"", b"", 255 * 32 + 1))
    out["refuse/gcm_key_16"] = await _outcome(crypto.aes_gcm_encrypt(key[:16], nonce, b"x", b""))
    out["refuse/gcm_nonce_16"] = await _outcome(crypto.aes_gcm_encrypt(key, nonce + bytes(4), b"x", b""))
    out["refuse/gcm_short"] = await _outcome(crypto.aes_gcm_decrypt(key, nonce, bytes(15), b""))
    out["refuse/ctr_key_24"] = await _outcome(crypto.aes_ctr_keystream(key[:24], 16))
    out["refuse/ctr_negative"] = await _outcome(crypto.aes_ctr_keystream(key, -1))

    # randomness cannot be compared, only its form: lengths beyond getRandomValues' 65536-byte cap, no repeats
    draws = [crypto.random_bytes(n) for n in (0, 1, 65536, 65537, 200_000)]
    out["random_lengths"] = ",".join(str(len(d)) for d in draws)
    chunks = {draws[-1][i : i + 65536] for i in range(0, 196608, 65536)}
    out["random_distinct_chunks"] = str(len(chunks) == 3 and draws[-1][-1000:] != bytes(1000))
    return out


async def run_crypto_checks(**vectors: Any) -> dict[str, str]:
    """`crypto_outputs` on py_browser's WebCrypto backend (only in a page worker)."""
    from py_browser.webcrypto import WebCrypto

    return await crypto_outputs(WebCrypto(), vectors)
