"""Secure aggregation through a real server process with real CPython clients (X25519, AES from `cryptography`):
the round's result is the survivors' weighted mean, whoever drops in whichever phase; too few left redoes the
round; bad input is refused by name; and nothing the server receives reveals an update."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tinygrad import Tensor

from harness.server_process import running_server
from py_cli.websocket_transport import connector, federated_url
from py_cpython.crypto import CPythonCrypto
from py_shared.federated.client import Refused
from py_shared.federated.secure_client import SecureFederatedClient
from py_shared.models import build_model
from py_shared.privacy.accountant import RdpAccountant
from py_shared.protocol.framing import encode_frame
from py_shared.protocol.messages import Error, decode_message, encode_message
from py_shared.protocol.secure_messages import ForwardedShares, KeyList, MaskedInput, UnmaskRequest
from py_shared.protocol.transport import ConnectionClosed, QueuedTransport
from py_shared.secure.precision import fixed_point_for
from py_shared.task import TaskDefinition, task_from_json
from py_shared.training.trainer import TrainingCancelled
from py_shared.weights import get_vector, set_vector, vector_size
from tests.server.raw_client import post_task, tiny_task

PHASE_TIMEOUT_S = 2.0
# the message on whose arrival a client closes its connection without answering
DIES_ON = {"after keys": KeyList, "after shares": ForwardedShares, "during unmasking": UnmaskRequest}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("data")
    with running_server(data, log_path=data / "server.log") as url:
        yield url


class Recording(QueuedTransport):
    """A transport that keeps a copy of every frame the client sends."""

    def __init__(self, inner: QueuedTransport, sent: list[bytes]) -> None:
        super().__init__()
        self.inner, self.sent = inner, sent
        self._frames = inner._frames  # the inner transport delivers; we read the same queue

    async def send(self, frame: bytes) -> None:
        self.sent.append(frame)
        await self.inner.send(frame)

    async def close(self) -> None:
        await self.inner.close()


class Scripted(SecureFederatedClient):
    """A secure client that drops (closes its connection) when a given message arrives, or garbles its input."""

    def __init__(
        self,
        *args: Any,
        dies_on: type | None = None,
        garble: bool = False,
        before_keys: bool = False,
        dies_after_input: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.dies_on, self.garble, self.before_keys = dies_on, garble, before_keys
        self.dies_after_input = dies_after_input
        self.errors: list[Error] = []

    async def _die(self) -> None:
        """Close the connection and stay gone (no reconnect): a participant that dropped out."""
        self.cancelled = True
        await self._transport().close()
        raise ConnectionClosed("this participant dropped out")

    async def _step(self, message: object, payload: bytes) -> None:
        if self.dies_on is not None and isinstance(message, self.dies_on):
            await self._die()
        if self.garble and isinstance(message, ForwardedShares):
            await self._transport().send(encode_message(MaskedInput(round=0, attempt=message.attempt), b"\0" * 8))
            return
        await super()._step(message, payload)
        if self.dies_after_input and isinstance(message, ForwardedShares):
            await self._die()  # its masked input is sent; it is gone before unmasking starts

    def _handle(self, frame: bytes) -> tuple[Any, bytes]:
        message, payload = super()._handle(frame)
        if isinstance(message, Error):
            self.errors.append(message)
        return message, payload


def secure_task(server: str, task_id: str, participants: int, **overrides: Any) -> TaskDefinition:
    """A secure task whose rounds sum model updates at once (no feature statistics to agree on first)."""
    data = {**tiny_task(task_id)["data"], "normalize": False}
    definition = tiny_task(
        task_id,
        data=data,
        secure_aggregation=True,
        min_participants=participants,
        secure={"phase_timeout_s": PHASE_TIMEOUT_S},
        **overrides,
    )
    status, body = post_task(server, definition)
    assert status == 201, body
    return task_from_json(definition)


async def run_round(
    server: str,
    task: TaskDefinition,
    shifts: list[float] | list[np.ndarray],
    samples: list[int],
    scripts: dict[int, dict[str, Any]],
) -> tuple[list[float], list[float], list[Scripted], list[list[bytes]]]:
    """Clients join; client c's update is `shifts[c]` (on every weight, or a whole vector); returns (global
    before, after, clients, frames each sent). A client scripted with `before_keys` never advertises."""
    sent: list[list[bytes]] = [[] for _ in shifts]

    def connect(c: int) -> Any:
        inner = connector(federated_url(server, task.id))

        async def open_recording() -> QueuedTransport:
            return Recording(await inner(), sent[c])

        return open_recording

    clients = [
        Scripted(task, build_model(task), samples[c], connect(c), crypto=CPythonCrypto(), **scripts.get(c, {}))
        for c in range(len(shifts))
    ]
    await asyncio.gather(*(c.start() for c in clients))
    before = get_vector(clients[0].model).tolist()
    for c, client in enumerate(clients):
        shift = shifts[c]
        set_vector(client.model, get_vector(client.model) + (Tensor(shift) if isinstance(shift, np.ndarray) else shift))

    async def take_part(client: Scripted) -> None:
        if client.before_keys:
            await client.transport.close()  # type: ignore[union-attr]
            return
        with contextlib.suppress(TrainingCancelled):  # the scripted dropouts end this way
            await client.round_end(1)

    await asyncio.wait_for(asyncio.gather(*(take_part(client) for client in clients)), 60)
    alive = [cl for cl in clients if cl.round == 1]
    after = get_vector(alive[0].model).tolist()
    for client in alive:
        assert get_vector(client.model).tolist() == after  # everyone holds the same new model
        await client.leave()
    return before, after, clients, sent


def assert_mean_of(before: list[float], after: list[float], shifts: list[float], samples: list[int]) -> None:
    expected = sum(s * n for s, n in zip(shifts, samples, strict=True)) / sum(samples)
    bound = fixed_point_for(1.0, 100).max_error(len(shifts)) + 1e-6
    assert np.allclose(np.array(after) - np.array(before), expected, atol=bound), (expected, after[0] - before[0])


SHIFTS = [0.01, 0.02, 0.03, 0.04, 0.05]
SAMPLES = [10, 20, 30, 40, 50]


@pytest.mark.parametrize("phase", ["before keys", "after keys", "after shares", "after its input", "during unmasking"])
def test_a_client_dropping_in_any_phase_leaves_the_survivors_mean(server: str, phase: str) -> None:
    task = secure_task(server, f"drop-{phase.replace(' ', '-')}", 4)
    scripts: dict[str, dict[str, Any]] = {
        "before keys": {"before_keys": True},
        "after its input": {"dies_after_input": True},
    }
    script = scripts.get(phase) or {"dies_on": DIES_ON[phase]}
    started = time.monotonic()
    before, after, _, _ = asyncio.run(run_round(server, task, SHIFTS, SAMPLES, {2: dict(script)}))
    late = phase in ("after its input", "during unmasking")
    counted = [0, 1, 2, 3, 4] if late else [0, 1, 3, 4]  # once its masked input is in, it counts
    assert_mean_of(before, after, [SHIFTS[c] for c in counted], [SAMPLES[c] for c in counted])
    assert time.monotonic() - started < 10 * PHASE_TIMEOUT_S + 20


def test_below_the_threshold_the_round_is_redone_with_who_is_left(server: str) -> None:
    task = secure_task(server, "too-few", 3)  # 5 clients, threshold 4: two gone after sharing is too many
    scripts: dict[int, dict[str, Any]] = {1: {"dies_on": ForwardedShares}, 3: {"dies_on": ForwardedShares}}
    before, after, _, _ = asyncio.run(run_round(server, task, SHIFTS, SAMPLES, scripts))
    counted = [0, 2, 4]
    assert_mean_of(before, after, [SHIFTS[c] for c in counted], [SAMPLES[c] for c in counted])


def test_a_malformed_masked_input_is_refused_by_name_and_the_round_completes(server: str) -> None:
    task = secure_task(server, "garbled", 4)
    before, after, clients, _ = asyncio.run(run_round(server, task, SHIFTS, SAMPLES, {4: {"garble": True}}))
    refusal = clients[4].errors[0]
    assert refusal.code == "wrong_length" and "masked input" in refusal.message
    assert_mean_of(before, after, SHIFTS[:4], SAMPLES[:4])


def test_nothing_the_server_receives_correlates_with_an_update(server: str) -> None:
    task = secure_task(server, "recorded", 3, model={"kind": "mlp", "hidden": [1000, 1000]})
    size = vector_size(build_model(task))  # about 1M values: |r| of unrelated vectors ~ 0.001, a tenth of 0.01
    rng = np.random.default_rng(0)
    updates = [rng.normal(0, 0.05, size).astype(np.float32) for _ in range(3)]
    before, after, _, sent = asyncio.run(run_round(server, task, updates, [10, 10, 10], {}))
    payloads = [decode_message(f)[1] for frames in sent for f in frames]
    big = [np.frombuffer(p, dtype=np.uint32) for p in payloads if len(p) == 4 * size]
    assert len(big) == 3 and all(len(p) < 4096 for p in payloads if len(p) != 4 * size)  # only masked inputs
    for vector in big:
        signed = vector.view(np.int32).astype(np.float64)
        for u in updates:
            assert abs(np.corrcoef(signed, u)[0, 1]) < 0.01
        counts = np.bincount(vector >> 24, minlength=256)
        assert ((counts - size / 256) ** 2 / (size / 256)).sum() < 390  # uniform over Z_2^32 (fails w.p. ~1e-7)
    delta = np.array(after) - np.array(before)
    assert np.corrcoef(delta, sum(updates))[0, 1] > 0.999  # while the unmasked sum does


@pytest.mark.parametrize("dropped", [False, True])
def test_distributed_dp_noises_only_the_sum_as_central_dp_would(server: str, dropped: bool) -> None:
    z, clip = 1.0, 0.01
    privacy = {"clip_norm": clip, "noise_multiplier": z, "distributed": True}
    model = {"kind": "mlp", "hidden": [300, 300]}
    task = secure_task(server, f"ddp-{int(dropped)}", 3, privacy=privacy, model=model)
    # client 3 drops after sharing its keys: its noise never reaches the sum
    scripts: dict[int, dict[str, Any]] = {3: {"dies_on": ForwardedShares}} if dropped else {}
    before, after, clients, _ = asyncio.run(run_round(server, task, [0.0] * 4, [10] * 4, scripts))
    noise = np.array(after) - np.array(before)  # zero updates: the mean of the noise is all that moved
    # each input carries N(0, (zC)^2 / 4): the sum of all four has central DP's noise (zC)^2; with one gone it
    # has 3/4 of it, i.e. an effective noise multiplier of z * sqrt(3/4), which the accountants compose
    survivors = 3 if dropped else 4
    effective = z * math.sqrt(survivors / 4)
    assert abs(noise.std() / (effective * clip / survivors) - 1) < 0.03
    reference = RdpAccountant(1e-5)
    reference.step(effective)
    assert all(c.accountant is not None and c.accountant.epsilon == reference.epsilon for c in clients[:3])


def test_a_client_whose_messages_the_server_cannot_read_stops_with_the_reason(server: str) -> None:
    task = secure_task(server, "unreadable", 2)

    class FromAnotherVersion(SecureFederatedClient):
        async def _advertise(self, round_: int, purpose: Any, prepare: Any) -> None:
            header = {"kind": "advertise_keys", "round": round_, "samples": self.samples, "new_field": 1}
            await self._transport().send(encode_frame(header, b"\0" * 96))

    async def scenario() -> None:
        connect = connector(federated_url(server, task.id))
        clients = [FromAnotherVersion(task, build_model(task), 10, connect, crypto=CPythonCrypto()) for _ in range(2)]
        await asyncio.gather(*(c.start() for c in clients))
        with pytest.raises(Refused, match=r"cannot take this client.s secure-aggregation messages.*new_field"):
            await asyncio.wait_for(clients[0].round_end(1), 20)  # it used to wait here forever

    asyncio.run(scenario())
