"""Chunks: frames of any size come back whole, and every way a peer can get chunks wrong is a ChunkError."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from py_shared.protocol.chunks import CHUNK_BYTES, HEADER, MAGIC, VERSION, ChunkError, Reassembler, split_frame

CAPACITY = CHUNK_BYTES - HEADER.size
LIMIT = 8 * 2**20


def chunk(
    message_id: int,
    index: int,
    count: int,
    data: bytes = b"x",
    magic: bytes = MAGIC,
    version: int = VERSION,
    flags: int = 0,
) -> bytes:
    """One chunk with any header at all."""
    return HEADER.pack(magic, version, flags, message_id, index, count) + data


def reassemble(chunks: list[bytes], reassembler: Reassembler) -> bytes:
    """Feed every chunk; only the last may finish the frame."""
    for c in chunks[:-1]:
        assert reassembler.feed(c) is None
    frame = reassembler.feed(chunks[-1])
    assert frame is not None
    return frame


@pytest.mark.parametrize("size", [1, CAPACITY - 1, CAPACITY, CAPACITY + 1, 2 * CAPACITY, 3_000_000])
def test_round_trip(size: int) -> None:
    frame = os.urandom(size)
    chunks = split_frame(frame, message_id=7)
    assert len(chunks) == -(-size // CAPACITY)
    assert all(len(c) <= CHUNK_BYTES for c in chunks)
    assert all(len(c) == CHUNK_BYTES for c in chunks[:-1])
    assert reassemble(chunks, Reassembler(LIMIT)) == frame


def test_header_layout() -> None:
    first, second = split_frame(b"a" * (CAPACITY + 3), message_id=0x01020304)
    assert first[:12] == b"PC\x01\x00\x01\x02\x03\x04\x00\x00\x00\x02"
    assert second == b"PC\x01\x00\x01\x02\x03\x04\x00\x01\x00\x02aaa"


def test_many_messages_in_a_row() -> None:
    reassembler = Reassembler(LIMIT, chunk_bytes=100)
    for message_id in range(1, 50):
        frame = os.urandom(message_id * 37)
        assert reassemble(split_frame(frame, message_id, chunk_bytes=100), reassembler) == frame


@given(
    frame=st.binary(min_size=1, max_size=5000),
    chunk_bytes=st.integers(min_value=HEADER.size + 1, max_value=600),
    message_id=st.integers(min_value=0, max_value=2**32 - 1),
)
@settings(max_examples=300, deadline=None)
def test_any_frame_comes_back_whole(frame: bytes, chunk_bytes: int, message_id: int) -> None:
    chunks = split_frame(frame, message_id, chunk_bytes)
    assert all(HEADER.size < len(c) <= chunk_bytes for c in chunks)
    assert reassemble(chunks, Reassembler(len(frame), chunk_bytes)) == frame


@given(frames=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=10))
@settings(max_examples=100, deadline=None)
def test_consecutive_frames_come_back_whole(frames: list[bytes]) -> None:
    reassembler = Reassembler(300, chunk_bytes=40)
    for message_id, frame in enumerate(frames, start=5):
        assert reassemble(split_frame(frame, message_id, chunk_bytes=40), reassembler) == frame


def test_split_refuses_what_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="empty frame"):
        split_frame(b"", 1)
    with pytest.raises(ValueError, match="more than 65535"):
        split_frame(b"x" * 65536, 1, chunk_bytes=HEADER.size + 1)
    assert len(split_frame(b"x" * 65535, 1, chunk_bytes=HEADER.size + 1)) == 65535
    with pytest.raises(ValueError, match="message id"):
        split_frame(b"x", 2**32)
    with pytest.raises(ValueError, match="message id"):
        split_frame(b"x", -1)
    with pytest.raises(ValueError, match="header"):
        split_frame(b"x", 1, chunk_bytes=HEADER.size)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (b"", "at least 12 bytes"),
        (b"PC\x01\x00\x00\x00\x00\x01\x00\x00\x00", "at least 12 bytes"),
        (chunk(1, 0, 1, magic=b"PD"), "not a PyDisco chunk"),
        (chunk(1, 0, 1, version=2), "version 2 is not supported"),
        (chunk(1, 0, 1, flags=1), "flags must be 0"),
        (chunk(1, 0, 0), "announces 0 chunks"),
        (chunk(1, 3, 3), "chunk 3 of message 1 is out of range"),
        (chunk(1, 0, 1, data=b""), "carries no data"),
        (chunk(1, 0, 1, data=b"x" * (CAPACITY + 1)), "larger than the limit of 65536"),
        (chunk(1, 1, 2), "starts with chunk 1"),
    ],
)
def test_a_bad_chunk_is_refused(bad: bytes, problem: str) -> None:
    with pytest.raises(ChunkError, match=problem):
        Reassembler(LIMIT).feed(bad)


def started(message_id: int = 1, count: int = 3, data: bytes = b"abcd") -> Reassembler:
    """A reassembler holding the first chunk of a `count`-chunk message."""
    reassembler = Reassembler(LIMIT)
    assert reassembler.feed(chunk(message_id, 0, count, data)) is None
    return reassembler


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (chunk(2, 0, 3, b"abcd"), "a chunk of message 2 arrived while message 1 is incomplete"),
        (chunk(0, 1, 3, b"abcd"), "a chunk of message 0 arrived while message 1 is incomplete"),
        (chunk(1, 0, 3, b"abcd"), "chunk 0 of message 1 arrived twice"),
        (chunk(1, 2, 3, b"ab"), "chunk 2 of message 1 arrived before chunk 1"),
        (chunk(1, 1, 4, b"abcd"), "announces 4 chunks, its first chunk 3"),
        (chunk(1, 1, 3, b"abc"), "carries 3 bytes; every chunk but the last carries as many as the first"),
        (chunk(1, 1, 3, b"abcde"), "carries 5 bytes; every chunk but the last"),
    ],
)
def test_a_chunk_that_does_not_fit_the_message_is_refused(bad: bytes, problem: str) -> None:
    with pytest.raises(ChunkError, match=problem):
        started().feed(bad)


def test_the_last_chunk_is_not_larger_than_the_others() -> None:
    reassembler = started(count=2)
    with pytest.raises(ChunkError, match="the last chunk of message 1 carries 5 bytes"):
        reassembler.feed(chunk(1, 1, 2, b"abcde"))


def test_after_an_error_the_partial_message_is_dropped() -> None:
    reassembler = started(message_id=1)
    with pytest.raises(ChunkError, match="arrived twice"):
        reassembler.feed(chunk(1, 0, 3, b"abcd"))
    # the rest of the broken message is now a message that does not start with chunk 0
    with pytest.raises(ChunkError, match="starts with chunk 1"):
        reassembler.feed(chunk(1, 1, 3, b"abcd"))
    # message 1 never completed, so its id may come again; a fresh message goes through whole
    assert reassemble(split_frame(b"fresh", 1), reassembler) == b"fresh"


def test_a_replayed_or_older_message_id_is_refused() -> None:
    reassembler = Reassembler(LIMIT)
    assert reassemble(split_frame(b"first", 10), reassembler) == b"first"
    for old in (10, 9, 0):
        with pytest.raises(ChunkError, match=f"message id {old} is not greater than the previous message's \\(10\\)"):
            reassembler.feed(chunk(old, 0, 1))
    assert reassemble(split_frame(b"next", 11), reassembler) == b"next"


def test_any_first_message_id_is_accepted() -> None:
    assert Reassembler(LIMIT).feed(chunk(0, 0, 1, b"zero")) == b"zero"
    assert Reassembler(LIMIT).feed(chunk(2**32 - 1, 0, 1, b"max")) == b"max"


def test_an_oversized_message_is_refused_at_its_first_chunk() -> None:
    reassembler = Reassembler(max_frame_bytes=10 * CAPACITY)
    # 12 full chunks announced: at least 11 * CAPACITY + 1 bytes, refused before anything is buffered
    with pytest.raises(ChunkError, match="announces 12 chunks of 65524 bytes, at least 720765 bytes"):
        reassembler.feed(chunk(1, 0, 12, b"x" * CAPACITY))
    # the largest count a hostile peer can announce is refused just the same
    with pytest.raises(ChunkError, match="announces 65535 chunks"):
        reassembler.feed(chunk(2, 0, 65535, b"x" * CAPACITY))


def test_an_oversized_message_is_refused_at_its_last_chunk() -> None:
    # 11 chunks may still fit 10 * CAPACITY + 1 bytes: only the last chunk's size settles it
    limit = 10 * CAPACITY + 1
    chunks = split_frame(b"x" * (10 * CAPACITY + 2), 1)
    reassembler = Reassembler(limit)
    for c in chunks[:-1]:
        assert reassembler.feed(c) is None
    with pytest.raises(ChunkError, match=f"message 1 is {limit + 1} bytes, more than the limit of {limit}"):
        reassembler.feed(chunks[-1])
    assert reassemble(split_frame(b"x" * limit, 2), reassembler) == b"x" * limit


def test_a_frame_of_exactly_the_limit_passes() -> None:
    frame = os.urandom(5 * CAPACITY + 17)
    assert reassemble(split_frame(frame, 1), Reassembler(len(frame))) == frame
    with pytest.raises(ChunkError, match="more than the limit"):
        reassemble(split_frame(frame, 1), Reassembler(len(frame) - 1))


def test_a_single_chunk_message_over_the_limit_is_refused() -> None:
    with pytest.raises(ChunkError, match="message 1 is 11 bytes, more than the limit of 10"):
        Reassembler(10).feed(chunk(1, 0, 1, b"x" * 11))


def test_the_reassembler_checks_its_own_settings() -> None:
    with pytest.raises(ValueError, match="max_frame_bytes"):
        Reassembler(0)
    with pytest.raises(ValueError, match="header"):
        Reassembler(10, chunk_bytes=12)
