"""CPython peers of a decentralized task on a real server, over real aiortc data channels: every round ends with
the same model on every peer (bit for bit), the server never sees a model, and a peer that vanishes mid-round is
left out without stalling the others beyond the exchange timeout."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.server_process import running_server
from py_cli.decentralized import train_decentralized
from py_cli.federated import create_task
from py_shared.decentralized.peer import DecentralizedPeer
from py_shared.federated.client import Refused, Status
from py_shared.task import Decentralized, Federation, MLPModel, TaskDefinition, Topology
from py_shared.weights import get_vector
from tests.fixtures import titanic_like_task
from tests.py_cli.test_federated import client_data


def decentralized_task(
    task_id: str,
    epochs: int = 3,
    peers: int = 3,
    timeout_s: float = 20.0,
    topology: Topology = "mesh",
    secure: bool = False,
) -> TaskDefinition:
    base = titanic_like_task(epochs)
    return replace(base, id=task_id, scheme="decentralized", min_participants=peers, secure_aggregation=secure,
                   decentralized=Decentralized(topology=topology, exchange_timeout_s=timeout_s))  # fmt: skip


@pytest.mark.parametrize(("topology", "secure"), [("mesh", False), ("ring", False), ("mesh", True), ("ring", True)])
def test_three_peers_end_every_round_with_the_same_model(tmp_path: Path, topology: Topology, secure: bool) -> None:
    task = decentralized_task(f"{topology}3{'s' if secure else ''}", epochs=3, topology=topology, secure=secure)
    rounds: dict[str, list[str]] = {}  # peer name -> the model's digest after each round
    statuses: list[Status] = []

    async def scenario(url: str) -> list:
        data = client_data(task, clients=3, rows=600)
        originals = DecentralizedPeer.round_end

        async def recording_round_end(self: DecentralizedPeer, local_round: int) -> None:
            await originals(self, local_round)
            digest = hashlib.sha256(get_vector(self.model).numpy().tobytes()).hexdigest()
            rounds.setdefault(self.name, []).append(digest)

        DecentralizedPeer.round_end = recording_round_end  # type: ignore[method-assign]
        try:
            return await asyncio.gather(
                *(
                    train_decentralized(task, d, url, name=f"p{i}", on_status=statuses.append)
                    for i, d in enumerate(data)
                )
            )
        finally:
            DecentralizedPeer.round_end = originals  # type: ignore[method-assign]

    with running_server(tmp_path, log_path=tmp_path / "server.log") as url:
        create_task(url, task)
        results = asyncio.run(scenario(url))
    assert len(rounds) == 3 and all(len(r) == 3 for r in rounds.values())
    for r in range(3):
        assert len({rounds[p][r] for p in rounds}) == 1, f"round {r}: the peers' models differ"
    models = [get_vector(t.model).numpy() for t, _ in results]
    np.testing.assert_array_equal(models[0], models[1])
    np.testing.assert_array_equal(models[0], models[2])
    # one model, so its accuracy over the three validation splits together (equal sizes) is their mean
    assert sum(h[-1].val_accuracy for _, h in results) / 3 > 0.7
    words = "model exchanged" if topology == "mesh" else "average received"
    if secure:
        words = "masked input exchanged" if topology == "mesh" else "masked sum received"
        assert any(s.secure == "secure aggregation: the sum of 3 of 3 peers' models" for s in statuses)
    assert any(words in s.detail for s in statuses)  # each link's state, in words


class RecordingProxy:
    """A TCP relay in front of the server that keeps every byte the peers send it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port, self.sent = upstream_port, []  # type: list[bytearray]
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        record = bytearray()
        self.sent.append(record)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, keep: bytearray | None) -> None:
            while data := await src.read(65536):
                if keep is not None:
                    keep.extend(data)
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, record), pipe(up_reader, writer, None), return_exceptions=True)


def frames_sent(stream: bytes) -> list[tuple[str, int]]:
    """(kind, payload bytes) of every protocol message in one connection's client-to-server bytes."""
    from websockets.frames import Frame
    from websockets.http11 import Request
    from websockets.server import ServerProtocol

    from py_shared.protocol.messages import decode_message

    parser = ServerProtocol(max_size=None)
    parser.receive_data(stream)
    found = []
    for event in parser.events_received():
        if isinstance(event, Frame) and event.opcode.name == "BINARY":
            message, payload = decode_message(bytes(event.data))
            found.append((message.kind, len(payload)))
        else:
            assert isinstance(event, Request | Frame), event
    return found


@pytest.mark.parametrize("secure", [False, True])
def test_the_server_receives_ids_rounds_and_signaling_only(tmp_path: Path, secure: bool) -> None:
    task = replace(decentralized_task("recorded", epochs=2, secure=secure), model=MLPModel(hidden=(512, 256)))

    async def scenario(upstream: str) -> tuple[list, RecordingProxy]:
        proxy = RecordingProxy(int(upstream.rsplit(":", 1)[1]))
        url = f"http://127.0.0.1:{await proxy.start()}"
        data = client_data(task, clients=3, rows=300)
        results = await asyncio.gather(*(train_decentralized(task, d, url, name=f"p{i}") for i, d in enumerate(data)))
        return results, proxy

    with running_server(tmp_path) as url:
        create_task(url, task)
        results, proxy = asyncio.run(scenario(url))
    kinds = [frames_sent(bytes(stream)) for stream in proxy.sent]
    assert len(kinds) == 3
    every = [k for connection in kinds for k in connection]
    assert {k for k, _ in every} == {"join", "ready", "signal", "received", "leave"}
    assert all(payload == 0 for _, payload in every)  # no message to the server carries a vector
    model_bytes = 4 * get_vector(results[0][0].model).numel()
    assert max(len(stream) for stream in proxy.sent) < model_bytes  # a whole session's worth is less than a model


def test_a_peer_that_never_answers_is_left_out_and_the_others_go_on(tmp_path: Path) -> None:
    from websockets.asyncio.client import connect

    from py_cli.websocket_transport import task_url
    from py_shared.protocol.messages import Join, decode_message, encode_message
    from py_shared.protocol.peer_messages import PeerWelcome, Ready

    timeout_s = 3.0
    task = replace(decentralized_task("silent", epochs=2, timeout_s=timeout_s),
                   federation=Federation(round_deadline_s=1.0))  # fmt: skip
    statuses: list[Status] = []

    async def silent_member(url: str) -> None:
        """Joins, says it is ready for round 0, then ignores every offer and sends nothing more."""
        connection = await connect(task_url(url, task.id, "decentralized"), max_queue=None)
        await connection.send(encode_message(Join(task_id=task.id, samples=50)))
        welcome, _ = decode_message(await connection.recv())
        assert isinstance(welcome, PeerWelcome)
        await connection.send(encode_message(Ready(round=0, samples=50)))
        await asyncio.sleep(3600)

    async def scenario(url: str) -> tuple[list, float]:
        silent = asyncio.ensure_future(silent_member(url))
        await asyncio.sleep(0.5)
        data = client_data(task, clients=3, rows=300)
        began = asyncio.get_running_loop().time()
        results = await asyncio.gather(
            *(train_decentralized(task, d, url, name=f"p{i}", on_status=statuses.append)
              for i, d in enumerate(data))
        )  # fmt: skip
        silent.cancel()
        return results, asyncio.get_running_loop().time() - began

    with running_server(tmp_path) as url:
        create_task(url, task)
        results, seconds = asyncio.run(scenario(url))
    models = [get_vector(t.model).numpy() for t, _ in results]
    np.testing.assert_array_equal(models[0], models[1])
    np.testing.assert_array_equal(models[0], models[2])
    assert any("left out" in s.detail for s in statuses)  # each peer says which neighbour it gave up on
    # round 0 waited for the silent member until the exchange timeout and the report grace, never more
    assert seconds < 2 * (timeout_s + 5.0) + 20, seconds


def test_a_peer_with_another_model_is_refused_on_joining_and_the_others_go_on(tmp_path: Path) -> None:
    task = decentralized_task("odd", epochs=2, peers=3)
    odd = replace(task, model=MLPModel(hidden=(8,)))  # same task id, another model: its vector has another length

    async def scenario(url: str) -> list:
        data = client_data(task, clients=4, rows=400)
        return await asyncio.gather(
            *(train_decentralized(odd if i == 3 else task, d, url, name=f"p{i}") for i, d in enumerate(data)),
            return_exceptions=True,
        )

    with running_server(tmp_path) as url:
        create_task(url, task)
        results = asyncio.run(scenario(url))
    assert isinstance(results[3], Refused) and "initial model does not fit" in str(results[3])
    models = [get_vector(t.model).numpy() for t, _ in results[:3]]
    np.testing.assert_array_equal(models[0], models[1])
    np.testing.assert_array_equal(models[0], models[2])


@pytest.mark.parametrize("secure", [False, True])
def test_a_late_joiner_listens_to_one_round_then_holds_the_same_model(tmp_path: Path, secure: bool) -> None:
    task = decentralized_task("late", epochs=4, peers=2, secure=secure)
    # it joins for the last three rounds: the first may already be under way (then it is lost to it), and its
    # rounds end with the others' (were it a round ahead, it would wait at its end for a round nobody takes)
    late_task = replace(task, training=replace(task.training, epochs=3))
    digests: dict[str, dict[int, str]] = {}

    async def scenario(url: str) -> None:
        data = client_data(task, clients=3, rows=450)
        round_one = asyncio.Event()

        def watch(s: Status) -> None:
            if s.round >= 1:
                round_one.set()

        async def late() -> tuple:
            await round_one.wait()
            return await train_decentralized(late_task, data[2], url, name="late")

        originals = DecentralizedPeer.round_end

        async def recording(self: DecentralizedPeer, local_round: int) -> None:
            await originals(self, local_round)
            digest = hashlib.sha256(get_vector(self.model).numpy().tobytes()).hexdigest()
            digests.setdefault(self.name, {})[self.round - 1] = digest  # the round just finished

        DecentralizedPeer.round_end = recording  # type: ignore[method-assign]
        try:
            await asyncio.gather(
                train_decentralized(task, data[0], url, name="p0", on_status=watch),
                train_decentralized(task, data[1], url, name="p1"),
                late(),
            )
        finally:
            DecentralizedPeer.round_end = originals  # type: ignore[method-assign]

    with running_server(tmp_path) as url:
        create_task(url, task)
        asyncio.run(scenario(url))
    late_rounds = sorted(digests["late"])
    assert late_rounds == [1, 2, 3]
    for r in late_rounds[-2:]:  # the round it listened to and the one it took part in: the same model as the others
        assert digests["late"][r] == digests["p0"][r] == digests["p1"][r], r


def test_gossiping_peers_train_together_over_aiortc(tmp_path: Path) -> None:
    task = replace(decentralized_task("gossip", epochs=3, peers=6),
                   decentralized=Decentralized(topology="gossip", gossip_degree=2))  # fmt: skip
    statuses: list[Status] = []

    async def scenario(url: str) -> list:
        data = client_data(task, clients=6, rows=900)
        return await asyncio.gather(
            *(train_decentralized(task, d, url, name=f"p{i}", on_status=statuses.append) for i, d in enumerate(data))
        )

    with running_server(tmp_path) as url:
        create_task(url, task)
        results = asyncio.run(scenario(url))
    assert sum(h[-1].val_accuracy for _, h in results) / 6 > 0.7
    assert any("model exchanged" in s.detail for s in statuses)


def test_peers_ride_out_a_signaling_server_restart(tmp_path: Path) -> None:
    import contextlib

    from harness.server_process import free_port

    task = decentralized_task("restart", epochs=6)
    port = free_port()
    statuses: list[Status] = []

    async def scenario() -> list:
        stack = contextlib.ExitStack()
        url = stack.enter_context(running_server(tmp_path, port))
        create_task(url, task)
        restarted = asyncio.Event()

        def on_status(s: Status) -> None:
            statuses.append(s)
            if s.round == 2:
                restarted.set()

        async def restart() -> None:
            await restarted.wait()
            await asyncio.to_thread(stack.close)  # the server goes away mid-training ...
            await asyncio.sleep(1.0)
            stack.enter_context(await asyncio.to_thread(lambda: running_server(tmp_path, port)))  # ... and back

        data = client_data(task, clients=3, rows=600)
        runs = [train_decentralized(task, d, url, name=f"p{i}", on_status=on_status) for i, d in enumerate(data)]
        try:
            return (await asyncio.gather(restart(), *runs))[1:]
        finally:
            stack.close()

    results = asyncio.run(scenario())
    assert all(len(history) == 6 for _, history in results)
    assert any(s.state == "reconnecting" for s in statuses)
    models = [get_vector(t.model).numpy() for t, _ in results]
    np.testing.assert_array_equal(models[0], models[1])  # the rounds after the restart brought them together
    np.testing.assert_array_equal(models[0], models[2])
