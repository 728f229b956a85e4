"""Frames and messages: round trips, and the decoder's answer to anything at all is a message or a ProtocolError."""

from __future__ import annotations

import json
import math
import struct
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from py_shared.protocol.framing import MAGIC, PREFIX, VERSION, FrameError, encode_frame
from py_shared.protocol.messages import (
    Error,
    GlobalModel,
    Join,
    Leave,
    ProtocolError,
    RoundInfo,
    Update,
    Welcome,
    decode_message,
    encode_message,
)
from py_shared.protocol.secure_messages import (
    CARRY_PAYLOAD,
    AdvertiseKeys,
    ForwardedShares,
    KeyList,
    MaskedInput,
    SecureAbort,
    SecureMessage,
    SecureResult,
    SharedStatistics,
    ShareKeys,
    UnmaskRequest,
    UnmaskShares,
)
from py_shared.protocol.vectors import all_finite_float32, all_smaller_than, checked_vector, magnitude_limit

MESSAGES = [
    Join(task_id="mnist", samples=12, client_name="ada", token="t"),
    Welcome(client_id="c1", round=3, participants=2, min_participants=2, vector_size=10),
    RoundInfo(round=3, participants=1, min_participants=2, updates=0, waiting=True),
    Leave(),
    Error(code="stale_round", message="round 2 is over", fatal=False),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.kind)
def test_messages_round_trip(message: object) -> None:
    assert decode_message(encode_message(message)) == (message, b"")  # type: ignore[arg-type]


SECURE_MESSAGES: list[SecureMessage] = [
    AdvertiseKeys(round=4, samples=30),
    AdvertiseKeys(round=0, samples=1, purpose="statistics"),
    KeyList(round=4, attempt=1, index=3, participants=5, threshold=4, weight_base=120),
    ShareKeys(round=4, attempt=1),
    ForwardedShares(round=4, attempt=1),
    MaskedInput(round=4, attempt=1),
    UnmaskRequest(round=4, attempt=1, survivors=(1, 2, 5), dropped=(3,)),
    UnmaskRequest(round=4, attempt=2, survivors=(1, 2), dropped=()),
    UnmaskShares(round=4, attempt=1),
    SecureAbort(round=4, attempt=1, reason="only 1 participant left"),
    SecureResult(round=4, participants=5, survivors=4, noise_multiplier=0.75),
    SharedStatistics(mean=(0.5, -2.0), std=(1.0, 0.25), participants=3),
]


def test_every_secure_kind_has_an_example() -> None:
    kinds = {typing.get_args(typing.get_type_hints(cls)["kind"])[0] for cls in typing.get_args(SecureMessage)}
    assert {m.kind for m in SECURE_MESSAGES} == kinds and set(CARRY_PAYLOAD) <= kinds


@pytest.mark.parametrize("message", SECURE_MESSAGES, ids=lambda m: m.kind)
def test_secure_messages_round_trip(message: SecureMessage) -> None:
    carries = message.kind in CARRY_PAYLOAD
    payload = bytes(range(12)) if carries else b""
    frame = encode_message(message, payload)
    assert decode_message(frame) == (message, payload)
    # the header alone for a kind that needs a payload; a payload after the header for one that has none
    wrong, words = (frame[: -len(payload)], "needs a vector payload") if carries else (frame + bytes(8), "must not")
    with pytest.raises(ProtocolError, match=f"a {message.kind} message {words}") as e:
        decode_message(wrong)
    assert e.value.code == "bad_message"


def test_vectors_travel_as_raw_float32_bytes() -> None:
    vector = struct.pack("<3f", 1.5, -2.0, 3.25)
    frame = encode_message(Update(round=1, samples=5), vector)
    assert (
        frame.endswith(vector)
        and len(frame)
        == PREFIX.size + len(json.dumps({"kind": "update", "round": 1, "samples": 5}, separators=(",", ":"))) + 12
    )
    assert decode_message(frame) == (Update(round=1, samples=5), vector)
    assert decode_message(encode_message(GlobalModel(round=2), vector))[1] == vector


def test_a_vector_must_match_the_message() -> None:
    with pytest.raises(ValueError, match="needs"):
        encode_message(Update(round=1, samples=1))
    with pytest.raises(ValueError, match="has no"):
        encode_message(Leave(), b"\0\0\0\0")


def test_size_limits_apply_both_ways() -> None:
    with pytest.raises(FrameError, match="limit"):
        encode_frame({"kind": "leave"}, b"\0" * 400, max_bytes=100)
    frame = encode_message(Update(round=0, samples=1), b"\0" * 400)
    with pytest.raises(ProtocolError) as e:
        decode_message(frame, max_bytes=100)
    assert e.value.code == "too_large"
    with pytest.raises(FrameError, match="header"):
        encode_frame({"kind": "x" * 20000})


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        (b"", "bad_frame", "at least"),
        (b"XX\x01\0\0\0\0", "bad_frame", "not a PyDisco frame"),
        (MAGIC + bytes([VERSION + 1]) + b"\2\0\0\0{}", "bad_frame", "version"),
        (PREFIX.pack(MAGIC, VERSION, 10) + b"{}", "bad_frame", "ends before"),
        (PREFIX.pack(MAGIC, VERSION, 2) + b"[]", "bad_frame", "JSON object"),
        (PREFIX.pack(MAGIC, VERSION, 16) + b'{"round":Infinity}'[:16], "bad_frame", "not valid JSON"),
        (encode_frame({"kind": "update", "round": -1, "samples": 1}, b"\0" * 4), "bad_message", "round"),
        (encode_frame({"kind": "join", "task_id": "t", "samples": "many"}), "bad_message", "samples"),
        (encode_frame({"kind": "leave"}, b"\0" * 4), "bad_message", "must not carry"),
        (encode_frame({"kind": "advertise_keys", "round": -1, "samples": 1}, b"\0" * 4), "bad_message", "round"),
        (
            encode_frame({"kind": "shared_statistics", "mean": [0.0], "std": [0.0], "participants": 2}),
            "bad_message",
            "std",
        ),
    ],
)
def test_bad_frames_say_what_is_wrong(frame: bytes, code: str, words: str) -> None:
    with pytest.raises(ProtocolError) as e:
        decode_message(frame)
    assert e.value.code == code and words in str(e.value)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    try:
        decode_message(data)
    except ProtocolError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
headers = st.fixed_dictionaries(
    {"kind": st.sampled_from(["join", "welcome", "global_model", "update", "round_info", "leave", "error", "x"])},
    optional={k: json_values for k in ("task_id", "samples", "round", "code", "message", "fatal", "token")},
)


@settings(max_examples=400, deadline=None)
@given(headers, st.binary(max_size=64), st.integers(min_value=0, max_value=12))
def test_random_well_framed_headers_never_crash_the_decoder(header: dict, payload: bytes, cut: int) -> None:
    text = json.dumps(header).encode()
    frame = PREFIX.pack(MAGIC, VERSION, len(text)) + text + payload
    for candidate in (frame, frame[: len(frame) - cut]):
        try:
            message, body = decode_message(candidate)
        except ProtocolError:
            continue
        assert len(body) % 4 == 0 and message.kind in (
            "join",
            "welcome",
            "global_model",
            "update",
            "round_info",
            "leave",
            "error",
        )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(width=32), max_size=50))
def test_the_finiteness_check_agrees_with_math_isfinite(values: list[float]) -> None:
    payload = struct.pack(f"<{len(values)}f", *values)
    assert all_finite_float32(payload) == all(math.isfinite(v) for v in values)


def test_every_non_finite_bit_pattern_is_caught() -> None:
    for bits in (0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFFFFFFF):
        payload = struct.pack("<3f", 1.0, 2.0, 3.0) + struct.pack("<I", bits)
        assert not all_finite_float32(payload)
    assert all_finite_float32(struct.pack("<2f", 3.4e38, -1e-45))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), max_size=50), st.integers(1, 10**9))
def test_the_magnitude_check_agrees_with_abs(values: list[float], size: int) -> None:
    limit = magnitude_limit(size)
    assert 4 * size * limit**2 <= 3.4028234663852886e38 and 1e9 * limit * 1e10 <= 3.4028234663852886e38
    (below,) = struct.unpack("<f", struct.pack("<I", struct.unpack("<I", struct.pack("<f", limit))[0] - 1))
    for extra in ([], [limit], [-limit], [below], [-below]):  # the limit is exact: float32 just below it passes
        payload = struct.pack(f"<{len(values) + len(extra)}f", *values, *extra)
        assert all_smaller_than(payload, limit) == all(abs(v) < limit for v in values + extra)


def test_an_update_whose_values_could_overflow_a_sum_is_too_large() -> None:
    with pytest.raises(ProtocolError, match="too large") as refused:
        checked_vector(struct.pack("<3f", 0.5, 3e38, 1.0), 3, "CPU")
    assert refused.value.code == "too_large"
    assert checked_vector(struct.pack("<3f", 0.5, -1e17, 1.0), 3, "CPU").shape == (3,)
