"""CPython clients in a federation on a real server: training through rounds, a server restart mid-training,
refusals, client-side DP on the update, and the `train --server` and `simulate` commands."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.server_process import free_port, running_server
from py_cli.federated import create_task, train_federated
from py_cli.websocket_transport import connector, federated_url
from py_shared.data.sources import CsvSource
from py_shared.data.splits import SplitSpec, split_source
from py_shared.federated.client import FederatedClient, Refused, Status
from py_shared.models import build_model
from py_shared.task import MLPModel, Privacy, TaskDefinition
from py_shared.training.pipeline import prepare_data
from py_shared.training.trainer import TrainingCancelled
from py_shared.weights import get_vector
from tests.fixtures import titanic_like_csv, titanic_like_task
from tests.py_cli.test_train import cli, final, write_task


def federated_task(task_id: str, epochs: int = 4, **changes: object) -> TaskDefinition:
    base = titanic_like_task(epochs)
    return replace(base, id=task_id, scheme="federated", min_participants=2, **changes)  # type: ignore[arg-type]


def client_data(task: TaskDefinition, clients: int = 2, rows: int = 400) -> list:
    parts = split_source(task, CsvSource("p.csv", titanic_like_csv(rows)), clients, SplitSpec("iid"))
    return [prepare_data(task, part) for part in parts]


def test_two_clients_train_through_every_round_and_end_with_the_same_model(tmp_path: Path) -> None:
    task = federated_task("together", epochs=4)

    async def scenario(url: str) -> list:
        data = client_data(task)
        return await asyncio.gather(*(train_federated(task, d, url, name=f"c{i}") for i, d in enumerate(data)))

    with running_server(tmp_path) as url:
        create_task(url, task)
        results = asyncio.run(scenario(url))
    (t0, h0), (t1, h1) = results
    assert len(h0) == len(h1) == 4
    np.testing.assert_array_equal(get_vector(t0.model).numpy(), get_vector(t1.model).numpy())
    assert h0[-1].val_accuracy > 0.7


def test_clients_ride_out_a_server_restart_and_no_round_is_lost(tmp_path: Path) -> None:
    task = federated_task("restart", epochs=10)
    port, log = free_port(), tmp_path / "server.log"
    statuses: list[Status] = []

    async def scenario() -> list:
        stack = contextlib.ExitStack()
        url = stack.enter_context(running_server(tmp_path, port, log))
        create_task(url, task)
        restarted = asyncio.Event()

        def on_status(s: Status) -> None:
            statuses.append(s)
            if s.round == 3 and not restarted.is_set():
                restarted.set()

        async def restart() -> None:
            await restarted.wait()
            await asyncio.to_thread(stack.close)  # the server goes away mid-training ...
            await asyncio.sleep(1.0)
            stack.enter_context(await asyncio.to_thread(lambda: running_server(tmp_path, port, log)))  # ... and back

        data = client_data(task)
        runs = [train_federated(task, d, url, on_status=on_status) for d in data]
        try:
            return (await asyncio.gather(restart(), *runs))[1:]
        finally:
            stack.close()

    results = asyncio.run(scenario())
    assert all(len(history) == 10 for _, history in results)
    assert any(s.state == "reconnecting" for s in statuses)
    text = log.read_text()
    resumed = re.search(r"task restart: resumed at round (\d+)", text)
    assert resumed and int(resumed.group(1)) >= 3
    assert "round 9 closed" in text  # every round closed, none repeated from zero


def test_a_wrong_join_token_stops_the_client_with_the_reason(tmp_path: Path) -> None:
    task = federated_task("private")

    async def scenario(url: str) -> None:
        await train_federated(task, client_data(task)[0], url, token="guess")

    with running_server(tmp_path) as url:
        create_task(url, task, join_token="the-real-one")
        with pytest.raises(Refused, match="join token"):
            asyncio.run(scenario(url))


def test_client_side_dp_clips_the_change_not_the_weights() -> None:
    task = federated_task("dp", privacy=Privacy(clip_norm=0.1))
    model = build_model(task)

    async def never() -> object:
        raise AssertionError("not connected in this test")

    client = FederatedClient(task, model, 10, never)  # type: ignore[arg-type]
    client.global_vector = (get_vector(model) - 3.0).realize()  # the weights moved far from the global model
    update = client.make_update().numpy()
    assert np.linalg.norm(update) == pytest.approx(0.1, rel=1e-4)
    assert np.allclose(update, update[0])  # the direction of (weights - global), all coordinates equal
    assert update[0] > 0


def test_the_cli_joins_a_federation(tmp_path: Path) -> None:
    task = federated_task("cli", epochs=2)
    parts = split_source(task, CsvSource("p.csv", titanic_like_csv(300)), 2, SplitSpec("iid"))
    files = []
    for i, part in enumerate(parts):
        assert isinstance(part, CsvSource)
        (tmp_path / f"c{i}.csv").write_text(part.text)
        files.append(tmp_path / f"c{i}.csv")
    with running_server(tmp_path / "server") as url:
        create_task(url, task)

        async def both() -> list:
            procs = [
                await asyncio.create_subprocess_exec(
                    *cli_args("train", "--task", "cli", "--server", url, "--data", f),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                for f in files
            ]
            return [await p.communicate() for p in procs]

        outputs = asyncio.run(both())
    for out, err in outputs:
        assert final(out.decode())["epochs"] == 2
        assert "[training] round 1, 2/2 participants" in err.decode()


def cli_args(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "py_cli", *map(str, args)]


def test_simulate_prints_local_and_federated_accuracy(tmp_path: Path) -> None:
    task_file = write_task(tmp_path / "task.json", federated_task("sim", epochs=2))
    data = tmp_path / "p.csv"
    data.write_text(titanic_like_csv(400))
    result = cli(
        "simulate", "--task", task_file, "--data", data, "--clients", "3", "--rounds", "2", "--split", "dirichlet:1.0"
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert len(rows) == 3 and all(r[2] == "honest" and 0 <= float(r[3]) <= 1 for r in rows)
    assert "round 2/2 [########################] done: 3 participants" in result.stderr


def test_cancelling_while_waiting_for_participants_stops_the_client(tmp_path: Path) -> None:
    task = federated_task("lonely")

    async def scenario(url: str) -> None:
        model = build_model(task)
        client: FederatedClient
        cancelling: list[asyncio.Future[None]] = []

        def on_status(s: Status) -> None:
            if s.state == "waiting" and not cancelling:
                cancelling.append(asyncio.ensure_future(client.cancel()))  # as the page's Cancel button does

        client = FederatedClient(task, model, 10, connector(federated_url(url, task.id)), on_status=on_status)
        await asyncio.wait_for(client.start(), 30)  # alone, with two needed: it waits until cancelled

    with running_server(tmp_path) as url:
        create_task(url, task)
        with pytest.raises(TrainingCancelled):
            asyncio.run(scenario(url))


def test_a_client_whose_model_differs_from_the_servers_is_refused(tmp_path: Path) -> None:
    on_server = federated_task("shape")
    here = replace(on_server, model=MLPModel(hidden=(3,)))

    async def scenario(url: str) -> None:
        await FederatedClient(here, build_model(here), 10, connector(federated_url(url, here.id))).start()

    with running_server(tmp_path) as url:
        create_task(url, on_server)
        with pytest.raises(Refused, match="task definitions differ"):
            asyncio.run(scenario(url))
