"""One binary frame per message: magic, version, a small JSON header, then raw little-endian float32 values.

    b"PD" | version: u8 | header length: u32 LE | header: UTF-8 JSON object | payload: float32 LE values

No base64: a model travels as its own bytes. Every way a frame can be wrong raises FrameError (FrameTooLarge for
a size limit) with a sentence that is safe to send back to whoever sent it. The header's JSON is read by
typed_json.parse, within its stated depth and integer limits.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from py_shared.typed_json import parse

MAGIC = b"PD"
VERSION = 1
PREFIX = struct.Struct("<2sBI")
MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
# How long either end of a WebSocket waits for the pong to its keepalive ping. A CPython participant's event loop
# stalls while tinygrad compiles its first training steps (over 40 s on a busy 2-core machine); the libraries'
# 20 s dropped it mid-round, and it lost that round.
KEEPALIVE_TIMEOUT_S = 120.0


class FrameError(ValueError):
    """A frame that cannot be read; the message says why in plain words."""


class FrameTooLarge(FrameError):
    """A frame or its header is over a size limit."""


def encode_frame(header: dict[str, Any], payload: bytes = b"", max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """Pack a JSON header and a float32 payload into one frame."""
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    if len(text) > MAX_HEADER_BYTES:
        raise FrameTooLarge(f"the header is {len(text)} bytes, more than the limit of {MAX_HEADER_BYTES}")
    if len(payload) % 4:
        raise FrameError(f"a payload of {len(payload)} bytes is not a whole number of float32 values")
    frame = PREFIX.pack(MAGIC, VERSION, len(text)) + text + payload
    if len(frame) > max_bytes:
        raise FrameTooLarge(f"the frame is {len(frame)} bytes, more than the limit of {max_bytes}")
    return frame


def decode_frame(frame: bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> tuple[dict[str, Any], bytes]:
    """Split a frame into its header (a JSON object) and its payload bytes, or raise FrameError."""
    if len(frame) > max_bytes:
        raise FrameTooLarge(f"the frame is {len(frame)} bytes, more than the limit of {max_bytes}")
    if len(frame) < PREFIX.size:
        raise FrameError(f"a frame has at least {PREFIX.size} bytes, this one has {len(frame)}")
    magic, version, header_length = PREFIX.unpack_from(frame)
    if magic != MAGIC:
        raise FrameError("not a PyDisco frame (it does not start with b'PD')")
    if version != VERSION:
        raise FrameError(f"protocol version {version} is not supported; this side speaks version {VERSION}")
    if header_length > MAX_HEADER_BYTES:
        raise FrameTooLarge(f"the header announces {header_length} bytes, more than the limit of {MAX_HEADER_BYTES}")
    end = PREFIX.size + header_length
    if end > len(frame):
        raise FrameError(f"the header announces {header_length} bytes but the frame ends before")
    try:
        header = parse(frame[PREFIX.size : end])
    except ValueError as e:
        raise FrameError(f"the header {e}") from None
    if not isinstance(header, dict):
        raise FrameError("the header must be a JSON object")
    payload = bytes(frame[end:])
    if len(payload) % 4:
        raise FrameError(f"a payload of {len(payload)} bytes is not a whole number of float32 values")
    return header, payload
