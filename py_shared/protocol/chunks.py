"""Protocol frames cut into chunks for a WebRTC data channel, and put back together.

A frame carries a whole model and can be megabytes long, but browsers do not agree on how large one data channel
message may be (Firefox and Chromium refused each other's large messages in DISCO); 64 KiB works between Chromium,
Firefox and aiortc. So each frame travels as numbered chunks of at most CHUNK_BYTES:

    b"PC" | version: u8 | flags: u8 (0) | message id: u32 | chunk index: u16 | chunk count: u16 | data
    (big-endian header, 12 bytes)

The channel is ordered and reliable, so chunks of one message arrive one after the other, in index order, and
message ids only grow. Anything else means a broken or hostile peer, and the Reassembler says so (ChunkError)
instead of guessing. It also refuses, before buffering anything more, a message that would end up larger than
the receiver's limit: the sender cuts every chunk but the last to the same size, so the first chunk already tells
how large the whole message will be, give or take one chunk.
"""

from __future__ import annotations

import struct

MAGIC = b"PC"
VERSION = 1
HEADER = struct.Struct("!2sBBIHH")
CHUNK_BYTES = 64 * 1024  # a whole chunk, header included
MAX_CHUNKS = 0xFFFF
MAX_MESSAGE_ID = 0xFFFFFFFF


class ChunkError(ValueError):
    """A chunk that cannot be accepted; the message says why in plain words."""


def split_frame(frame: bytes, message_id: int, chunk_bytes: int = CHUNK_BYTES) -> list[bytes]:
    """Cut a frame into chunks of at most `chunk_bytes` (header included), all full but the last."""
    if not frame:
        raise ValueError("an empty frame cannot be sent (every chunk carries at least one byte)")
    if not 0 <= message_id <= MAX_MESSAGE_ID:
        raise ValueError(f"a message id is between 0 and {MAX_MESSAGE_ID}, not {message_id}")
    if chunk_bytes <= HEADER.size:
        raise ValueError(f"a chunk needs more than the {HEADER.size} bytes of its header, not {chunk_bytes}")
    capacity = chunk_bytes - HEADER.size
    count = -(-len(frame) // capacity)
    if count > MAX_CHUNKS:
        raise ValueError(
            f"a frame of {len(frame)} bytes needs {count} chunks of {chunk_bytes} bytes, more than {MAX_CHUNKS}"
        )
    data = memoryview(frame)
    return [
        HEADER.pack(MAGIC, VERSION, 0, message_id, index, count) + data[index * capacity : (index + 1) * capacity]
        for index in range(count)
    ]


class Reassembler:
    """Puts the chunks of one channel back into frames, refusing anything an ordered, reliable channel cannot
    deliver; after a ChunkError the partial message is dropped and the next chunk must start a new message."""

    def __init__(self, max_frame_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be at least 1, not {max_frame_bytes}")
        if chunk_bytes <= HEADER.size:
            raise ValueError(f"a chunk needs more than the {HEADER.size} bytes of its header, not {chunk_bytes}")
        self.max_frame_bytes = max_frame_bytes
        self.chunk_bytes = chunk_bytes
        self._last_completed: int | None = None  # id of the last whole message
        self._reset()

    def _reset(self) -> None:
        self._message_id: int | None = None  # the message being put together, if any
        self._count = 0
        self._data_bytes = 0  # bytes in every chunk of the message but the last
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> bytes | None:
        """Take the next chunk; the whole frame once its last chunk arrived, else None. Raises ChunkError."""
        try:
            return self._feed(chunk)
        except ChunkError:
            self._reset()
            raise

    def _feed(self, chunk: bytes) -> bytes | None:
        if len(chunk) < HEADER.size:
            raise ChunkError(f"a chunk has at least {HEADER.size} bytes of header, this one has {len(chunk)}")
        if len(chunk) > self.chunk_bytes:
            raise ChunkError(f"a chunk of {len(chunk)} bytes is larger than the limit of {self.chunk_bytes}")
        magic, version, flags, message_id, index, count = HEADER.unpack_from(chunk)
        if magic != MAGIC:
            raise ChunkError("not a PyDisco chunk (it does not start with b'PC')")
        if version != VERSION:
            raise ChunkError(f"chunk version {version} is not supported; this side speaks version {VERSION}")
        if flags != 0:
            raise ChunkError(f"chunk flags must be 0 in version {VERSION}, not {flags}")
        if count == 0:
            raise ChunkError(f"message {message_id} announces 0 chunks; a message has at least one")
        if index >= count:
            raise ChunkError(f"chunk {index} of message {message_id} is out of range: the message has {count} chunks")
        data = chunk[HEADER.size :]
        if not data:
            raise ChunkError(f"chunk {index} of message {message_id} carries no data")

        if self._message_id is None:
            self._start(message_id, index, count, len(data))
        elif message_id != self._message_id:
            raise ChunkError(
                f"a chunk of message {message_id} arrived while message {self._message_id} is incomplete "
                f"({len(self._parts)} of {self._count} chunks)"
            )
        elif count != self._count:
            raise ChunkError(
                f"chunk {index} of message {message_id} announces {count} chunks, its first chunk {self._count}"
            )
        elif index < len(self._parts):
            raise ChunkError(f"chunk {index} of message {message_id} arrived twice")
        elif index > len(self._parts):
            raise ChunkError(f"chunk {index} of message {message_id} arrived before chunk {len(self._parts)}")

        last = index == count - 1
        if not last and len(data) != self._data_bytes:
            raise ChunkError(
                f"chunk {index} of message {message_id} carries {len(data)} bytes; every chunk but the last "
                f"carries as many as the first ({self._data_bytes})"
            )
        if last and len(data) > self._data_bytes:
            raise ChunkError(
                f"the last chunk of message {message_id} carries {len(data)} bytes, more than the first "
                f"({self._data_bytes})"
            )
        if self._size + len(data) > self.max_frame_bytes:
            raise ChunkError(
                f"message {message_id} is {self._size + len(data)} bytes, more than the limit of {self.max_frame_bytes}"
            )
        self._parts.append(data)
        self._size += len(data)
        if not last:
            return None
        frame = b"".join(self._parts)
        self._last_completed = message_id
        self._reset()
        return frame

    def _start(self, message_id: int, index: int, count: int, data_bytes: int) -> None:
        """Check the first chunk of a new message and take its size as the message's chunk size."""
        if self._last_completed is not None and message_id <= self._last_completed:
            raise ChunkError(
                f"message id {message_id} is not greater than the previous message's ({self._last_completed}): "
                "a replay or a broken sender"
            )
        if index != 0:
            raise ChunkError(f"message {message_id} starts with chunk {index}, not chunk 0")
        if count > 1:
            # every chunk but the last is as large as this one, and the last has at least one byte
            smallest = (count - 1) * data_bytes + 1
            if smallest > self.max_frame_bytes:
                raise ChunkError(
                    f"message {message_id} announces {count} chunks of {data_bytes} bytes, at least {smallest} "
                    f"bytes in all, more than the limit of {self.max_frame_bytes}"
                )
        self._message_id = message_id
        self._count = count
        self._data_bytes = data_bytes
