"""The federated protocol's messages as frozen dataclasses, and their frames (see framing.py).

A message's JSON is the frame header; `kind` says which message it is. Update and GlobalModel carry a model's
flat float32 vector as the frame payload, the secure-aggregation messages (secure_messages.py) their binary
records or masked words, a peer's model (peer_messages.py) its vector; every other message has none.
Reading goes through decode_message, which checks everything a sender could get wrong and raises ProtocolError
with a code and a sentence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from py_shared.protocol.framing import DEFAULT_MAX_FRAME_BYTES, FrameError, FrameTooLarge, decode_frame, encode_frame
from py_shared.protocol.peer_messages import PEER_PAYLOAD, PeerMessage
from py_shared.protocol.secure_messages import CARRY_PAYLOAD, MAX_SAMPLES, SecureMessage, round_and_samples_problems
from py_shared.typed_json import ValidationError, from_json, to_json

MAX_TOKEN_CHARS = 256  # a join token: checked when a task is created and when a client joins

ErrorCode = Literal[
    "bad_frame",
    "bad_message",
    "unexpected",
    "unknown_task",
    "unauthorized",
    "wrong_length",
    "not_finite",
    "too_large",
    "stale_round",
    "duplicate_update",
    "server_full",
    "rate_limited",
    "round_in_progress",
    "server_error",
]


def join_token_problem(token: str) -> str:
    """What is wrong with a join token given when a task is created ("" when nothing)."""
    if len(token) > MAX_TOKEN_CHARS or not token.isprintable():  # Join refuses what is longer, every time
        return f"join_token: at most {MAX_TOKEN_CHARS} printable characters"
    return ""


class ProtocolError(ValueError):
    """What a peer sent cannot be accepted; `code` is machine-readable, the message is for people."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code: ErrorCode = code
        super().__init__(message)


@dataclass(frozen=True, kw_only=True)
class Join:
    """A client asks to take part in a task; `samples` is how much training data it holds."""

    kind: Literal["join"] = "join"
    task_id: str
    samples: int
    client_name: str = ""
    token: str = ""

    def problems(self) -> Iterator[str]:
        if not 1 <= self.samples <= MAX_SAMPLES:
            yield f"samples: must be between 1 and {MAX_SAMPLES}"
        if len(self.client_name) > 64 or len(self.token) > MAX_TOKEN_CHARS or len(self.task_id) > 64:
            yield f"task_id, client_name and token must be at most 64, 64 and {MAX_TOKEN_CHARS} characters"


@dataclass(frozen=True, kw_only=True)
class Welcome:
    """The server accepts a client; the current global model follows in a GlobalModel message."""

    kind: Literal["welcome"] = "welcome"
    client_id: str
    round: int
    participants: int
    min_participants: int
    vector_size: int


@dataclass(frozen=True, kw_only=True)
class GlobalModel:
    """The global model at the start of `round` (payload: its flat vector)."""

    kind: Literal["global_model"] = "global_model"
    round: int


@dataclass(frozen=True, kw_only=True)
class Update:
    """A client's update for `round` (payload: new weights minus the round's global weights)."""

    kind: Literal["update"] = "update"
    round: int
    samples: int

    def problems(self) -> Iterator[str]:
        return round_and_samples_problems(self.round, self.samples)


@dataclass(frozen=True, kw_only=True)
class RoundInfo:
    """Where the task stands: to everyone when people join or leave or a round closes; to a sender on its update."""

    kind: Literal["round_info"] = "round_info"
    round: int
    participants: int
    min_participants: int
    updates: int  # received so far in this round
    waiting: bool  # fewer participants than the minimum: training pauses until more join


@dataclass(frozen=True, kw_only=True)
class Leave:
    """A client leaves the task on purpose."""

    kind: Literal["leave"] = "leave"


@dataclass(frozen=True, kw_only=True)
class Error:
    """Something the receiver sent was refused; `fatal` means the connection closes after this message."""

    kind: Literal["error"] = "error"
    code: ErrorCode
    message: str
    fatal: bool = False


Message = Join | Welcome | GlobalModel | Update | RoundInfo | Leave | Error | SecureMessage | PeerMessage
CARRIES_VECTOR = ("update", "global_model", *CARRY_PAYLOAD, *PEER_PAYLOAD)


def encode_message(message: Message, vector: bytes = b"", max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """The frame for `message`, with `vector` (float32 bytes) as payload for updates and global models."""
    if (message.kind in CARRIES_VECTOR) != bool(vector):
        raise ValueError(f"a {message.kind} message {'needs' if message.kind in CARRIES_VECTOR else 'has no'} vector")
    return encode_frame(to_json(message), vector, max_bytes)


def decode_message(frame: bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> tuple[Message, bytes]:
    """The message in `frame` and its payload; raises ProtocolError saying what is wrong."""
    try:
        header, payload = decode_frame(frame, max_bytes)
    except FrameError as e:
        code: ErrorCode = "too_large" if isinstance(e, FrameTooLarge) else "bad_frame"
        raise ProtocolError(code, str(e)) from None
    try:
        message: Message = from_json(Message, header, "message")  # type: ignore[arg-type]
    except ValidationError as e:
        raise ProtocolError("bad_message", str(e)) from None
    if (message.kind in CARRIES_VECTOR) != bool(payload):
        needs = "needs a vector payload" if message.kind in CARRIES_VECTOR else "must not carry a payload"
        raise ProtocolError("bad_message", f"a {message.kind} message {needs}")
    return message, payload
