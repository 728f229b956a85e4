"""A task's room in-process: whatever aggregate reaches it, nothing non-finite is stored or sent."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from py_shared.protocol.messages import decode_message
from py_shared.safetensors_file import safetensors_to_flat
from py_shared.task import task_from_json
from server.federation.initial_model import initial_model
from server.federation.room import Participant, TaskRoom
from server.store import Store
from tests.server.raw_client import tiny_task


def floats(blob: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def test_an_aggregate_that_would_overflow_the_global_model_is_not_applied(tmp_path: Path) -> None:
    store = Store(tmp_path)
    task = task_from_json(tiny_task("overflow", aggregator="centered_clipping"))
    room = TaskRoom(task, store, *initial_model(task))
    sent: list[bytes] = []
    room.participants["p"] = Participant("p", "p", sent.append, sent.append)
    huge = np.full(room.size, 3e38, dtype=np.float32)
    room.close_round(huge, 2)  # finite: 3e38 plus the initial weights
    before = floats(room.global_vector.tobytes())
    room.close_round(huge, 2)  # 3e38 + 3e38 is Inf in float32 (a NaN would fare the same)
    assert room.round == 2 and floats(room.global_vector.tobytes()) == before
    stored = store.load_model("overflow")
    assert stored is not None and stored[0] == 2
    assert all(math.isfinite(v) for v in floats(safetensors_to_flat(room.slots, stored[1])[0]))
    models = [decode_message(f) for f in sent]
    assert [m.round for m, _ in models if m.kind == "global_model"] == [1, 2]  # type: ignore[union-attr]
    assert all(math.isfinite(v) for m, payload in models if m.kind == "global_model" for v in floats(payload))


def test_one_encoded_model_frame_per_round_is_shared_by_every_send(tmp_path: Path) -> None:
    task = task_from_json(tiny_task("shared", min_participants=1))
    room = TaskRoom(task, Store(tmp_path), *initial_model(task))
    inboxes: dict[str, list[bytes]] = {pid: [] for pid in "abc"}
    for pid, inbox in inboxes.items():
        room.participants[pid] = Participant(pid, pid, inbox.append, inbox.append)
    room.close_round(np.full(room.size, 0.25, dtype=np.float32), 3)
    frames = [next(f for f in inbox if decode_message(f)[0].kind == "global_model") for inbox in inboxes.values()]
    assert all(f is room.model_frame for f in frames)  # not one copy of the model per participant
