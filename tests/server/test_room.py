"""A task's room in-process: whatever aggregate reaches it, nothing non-finite is stored or sent."""

from __future__ import annotations

import asyncio
import math
import struct
from pathlib import Path

from tinygrad import Tensor

from py_shared.protocol.messages import decode_message
from py_shared.safetensors_file import safetensors_to_flat
from py_shared.task import task_from_json
from py_shared.weights import vector_to_bytes
from server.federation.room import DEVICE, Participant, TaskRoom
from server.store import Store
from tests.server.raw_client import tiny_task


def floats(blob: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def test_an_aggregate_that_would_overflow_the_global_model_is_not_applied(tmp_path: Path) -> None:
    store = Store(tmp_path)
    room = TaskRoom(task_from_json(tiny_task("overflow", aggregator="centered_clipping")), store)
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    async def scenario() -> None:
        room.participants["p"] = Participant("p", "p", send)
        huge = Tensor.full((room.size,), 3e38, device=DEVICE).contiguous().realize()
        await room.close_round(huge, 2)  # finite: 3e38 plus the initial weights
        before = floats(vector_to_bytes(room.global_vector))
        await room.close_round(huge, 2)  # 3e38 + 3e38 is Inf in float32 (a NaN would fare the same)
        assert room.round == 2 and floats(vector_to_bytes(room.global_vector)) == before

    asyncio.run(scenario())
    stored = store.load_model("overflow")
    assert stored is not None and stored[0] == 2
    assert all(math.isfinite(v) for v in floats(safetensors_to_flat(room.slots, stored[1])[0]))
    models = [decode_message(f) for f in sent]
    assert [m.round for m, _ in models if m.kind == "global_model"] == [1, 2]  # type: ignore[union-attr]
    assert all(math.isfinite(v) for m, payload in models if m.kind == "global_model" for v in floats(payload))
