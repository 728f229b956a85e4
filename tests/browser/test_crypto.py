"""Chromium's WebCrypto backend gives byte for byte what CPythonCrypto gives, refusals included."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from selenium import webdriver

from harness.pyworker import call_in_worker
from py_cpython.crypto import CPythonCrypto
from tests.browser.conftest import worker_file
from tests.browser.crypto_checks import crypto_outputs
from tests.py_cpython import test_crypto as kat

ALICE, BOB = kat.ALICE_PRIVATE.hex(), kat.BOB_PRIVATE.hex()
VECTORS: dict[str, Any] = {
    # RFC 7748's keys, an all-ones and an all-zero scalar (clamping makes both valid)
    "x25519_private": [ALICE, BOB, "ff" * 32, "00" * 32, "0123456789abcdef" * 4],
    "x25519_pairs": [
        [ALICE, kat.BOB_PUBLIC.hex()],
        [BOB, kat.ALICE_PUBLIC.hex()],
        *([scalar.hex(), u.hex()] for scalar, u, _ in kat.X25519_VECTORS),  # the second u has its top bit set
        [ALICE, "00" * 32],  # low order: refused
        [ALICE, "01" + "00" * 31],  # low order: refused
        [ALICE, "ff" * 31 + "7f"],  # u = 2^255 - 1, not reduced mod p
    ],
    "hkdf": [
        ["0b" * 22, "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9", 42],  # RFC 5869 test case 1
        ["0b" * 22, "", "", 42],  # RFC 5869 test case 3: no salt
        ["0b" * 22, "00" * 32, "", 42],  # HashLen zeros, which no salt stands for
        ["5e" * 32, "a1" * 100, "1f" * 300, 255 * 32],  # a salt longer than SHA-256's block; the longest output
        ["", "", "", 1],  # an empty secret
    ],
    "gcm": [
        [kat.GCM_KEY.hex(), kat.GCM_NONCE.hex(), kat.GCM_PLAINTEXT.hex(), kat.GCM_AAD.hex()],
        [kat.GCM_KEY.hex(), kat.GCM_NONCE.hex(), kat.GCM_PLAINTEXT.hex(), ""],
        ["42" * 32, "24" * 12, "", "0102"],
        ["42" * 32, "24" * 12, "00" * 17, ""],
    ],
    "gcm_open": [[kat.GCM_KEY.hex(), kat.GCM_NONCE.hex(), (kat.GCM_CIPHERTEXT + kat.GCM_TAG).hex(), kat.GCM_AAD.hex()]],
    "ctr_keys": [kat.CTR_KEY.hex(), "00" * 32],
    "ctr_lengths": [0, 1, 15, 64, 100, 100_000],
}


@pytest.fixture
def browser_outputs(ready_page: webdriver.Chrome) -> dict[str, str]:
    outputs: dict[str, str] = call_in_worker(
        ready_page, worker_file("crypto_checks.py"), "run_crypto_checks", **VECTORS
    )
    return outputs


def test_webcrypto_matches_cpython_byte_for_byte(browser_outputs: dict[str, str]) -> None:
    expected = asyncio.run(crypto_outputs(CPythonCrypto(), VECTORS))
    assert browser_outputs.keys() == expected.keys()
    differing = {
        name: (browser_outputs[name][:80], expected[name][:80])
        for name in expected
        if browser_outputs[name] != expected[name]
    }
    assert differing == {}, f"WebCrypto (left) and CPythonCrypto (right) differ: {differing}"

    # the agreement is on the published answers, and on refusing what must be refused
    assert browser_outputs["x25519_public/0"] == kat.ALICE_PUBLIC.hex()
    assert browser_outputs["x25519_shared/0"] == browser_outputs["x25519_shared/1"] == kat.SHARED.hex()
    assert browser_outputs["x25519_shared/3"] == kat.X25519_VECTORS[1][2].hex()
    assert (
        browser_outputs["x25519_shared/4"].startswith("CryptoError: ")
        and "low order" in browser_outputs["x25519_shared/4"]
    )
    assert browser_outputs["hkdf/1"] == browser_outputs["hkdf/2"]
    assert browser_outputs["gcm/0"] == (kat.GCM_CIPHERTEXT + kat.GCM_TAG).hex()
    assert browser_outputs["gcm_open/0"] == kat.GCM_PLAINTEXT.hex()
    for i in range(len(VECTORS["gcm"])):
        assert browser_outputs[f"gcm_round_trip/{i}"] == VECTORS["gcm"][i][2]
        assert browser_outputs[f"gcm_tampered/{i}"].startswith("CryptoError: ")
        assert browser_outputs[f"gcm_wrong_aad/{i}"].startswith("CryptoError: ")
    assert len(bytes.fromhex(browser_outputs[f"ctr/{kat.CTR_KEY.hex()[:8]}/100000"])) == 100_000
    assert all(v.startswith("CryptoError: ") for k, v in browser_outputs.items() if k.startswith("refuse/"))
    assert browser_outputs["random_lengths"] == "0,1,65536,65537,200000"
    assert browser_outputs["random_distinct_chunks"] == "True"
