"""`python -m py_cli simulate`: N real federated clients over real WebSockets against a real server.

The data is split into a common held-out test set and one part per client (IID, label skew or quantity
skew); every client trains through the rounds; at the end each client's federated model and a model trained on
its data alone are scored on the same test set. Attackers (the first K clients) can send scaled or
sign-flipped updates, to see what a robust aggregator is worth.

Two engines run the clients: `local` (asyncio tasks in this process) and `ray` (one Ray actor per client, in
py_cli.ray_engine). Both run `run_client` below, so for the same seed they end with the same global model.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from tinygrad import Tensor

from py_cli.federated import create_task, train_federated
from py_cli.local_server import running_server
from py_shared.data.sources import DataSource
from py_shared.data.splits import SplitSpec, hold_out, split_source
from py_shared.federated.client import FederatedClient, Status, StatusCallback
from py_shared.models import build_model
from py_shared.safetensors_file import model_to_safetensors
from py_shared.task import Aggregator, TaskDefinition, Training
from py_shared.training.device_data import DeviceExamples, DeviceTokens
from py_shared.training.model_card import model_metadata
from py_shared.training.pipeline import prepare_data
from py_shared.training.trainer import Trainer

TEST_FRACTION = 0.2

Engine = Literal["local", "ray"]


@dataclass(frozen=True)
class Attack:
    """What a Byzantine client sends instead of its honest update: `factor` times it (-1: sign flip)."""

    clients: int
    factor: float

    @staticmethod
    def parse(text: str) -> Attack:
        """'K:scale:F' (K clients send F times their update) or 'K:signflip' (K clients send minus it)."""
        parts = text.split(":")
        try:
            if len(parts) == 3 and parts[1] == "scale":
                return Attack(int(parts[0]), float(parts[2]))
            if len(parts) == 2 and parts[1] == "signflip":
                return Attack(int(parts[0]), -1.0)
        except ValueError:
            pass
        raise ValueError(f"{text!r}: expected K:scale:FACTOR or K:signflip")


def attacker(factor: float) -> type[FederatedClient]:
    """A client class whose updates are `factor` times the honest ones."""

    class Attacker(FederatedClient):
        def make_update(self) -> Tensor:
            return super().make_update() * factor

    return Attacker


@dataclass(frozen=True)
class ClientResult:
    """One simulated client: its data size, role, and test accuracy alone and federated."""

    client: int
    samples: int
    attacker: bool
    local_accuracy: float | None
    federated_accuracy: float


def simulation_task(task: TaskDefinition, clients: int, rounds: int, aggregator: Aggregator | None) -> TaskDefinition:
    """A fresh federated copy of `task` for this run: everyone waits for all clients, one epoch per round."""
    training: Training = replace(task.training, epochs=rounds, round_duration=1, round_unit="epochs")
    return replace(
        task,
        id=f"sim-{task.id[:40]}-{secrets.token_hex(3)}",
        scheme="federated",
        min_participants=clients,
        training=training,
        aggregator=aggregator or task.aggregator,
    )


def scoring_data(task: TaskDefinition, source: DataSource) -> DeviceExamples | DeviceTokens:
    """All of `source` on the device, for scoring."""
    return prepare_data(replace(task, training=replace(task.training, validation_fraction=0.0)), source).train


@dataclass(frozen=True)
class ClientJob:
    """Everything one simulated client needs; plain picklable data, so that a Ray actor can run it elsewhere."""

    client: int
    task: TaskDefinition
    source: DataSource
    server: str
    attack_factor: float | None = None  # None: an honest client
    report_rounds: bool = False  # this client prints a progress line as each round closes
    keep_model: bool = False  # return the final global model (safetensors)


@dataclass(frozen=True)
class ClientOutcome:
    """What a simulated client hands back: its federated test accuracy and, if asked, the final global model."""

    accuracy: float
    model: bytes | None


def round_printer(rounds: int) -> StatusCallback:
    """A status callback that prints one line to stderr as each of the `rounds` rounds closes."""
    started = time.perf_counter()
    closed: set[int] = set()

    def on_status(status: Status) -> None:
        if status.state == "training" and status.round and status.round not in closed:
            closed.add(status.round)
            bar = "#" * round(24 * status.round / rounds)
            print(
                f"round {status.round}/{rounds} [{bar:-<24}] done: {status.participants} participants, "
                f"{time.perf_counter() - started:.1f} s",
                file=sys.stderr,
                flush=True,
            )

    return on_status


async def run_client(job: ClientJob, test: DeviceExamples | DeviceTokens) -> ClientOutcome:
    """Train one simulated client through every round on `job.server` and score its final model on `test`."""
    trainer, _ = await train_federated(
        job.task,
        job.source,
        job.server,
        name=f"sim-{job.client}",
        on_status=round_printer(job.task.training.epochs) if job.report_rounds else None,
        client_class=attacker(job.attack_factor) if job.attack_factor is not None else None,
    )
    model = model_to_safetensors(trainer.model, model_metadata(job.task)) if job.keep_model else None
    return ClientOutcome(trainer.evaluate(test)[1], model)


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory() as data, running_server(Path(data)) as started:
        yield started


async def simulate(
    task: TaskDefinition,
    source: DataSource,
    clients: int,
    split: SplitSpec,
    rounds: int,
    *,
    server: str | None = None,
    admin_token: str = "",
    aggregator: Aggregator | None = None,
    attack: Attack | None = None,
    baseline: bool = True,
    seed: int = 0,
    engine: Engine = "local",
    address: str | None = None,
    cpus: int | None = None,
    save: Path | None = None,
) -> list[ClientResult]:
    """Run the simulation and return one result per client. `engine` "ray" runs each client in a Ray actor, on
    the cluster at `address` or on a local Ray instance with `cpus` CPUs; `save` receives the final global model
    as a safetensors file."""
    if attack is not None and task.secure_aggregation:
        raise ValueError("attacks show what a robust aggregator is worth; secure aggregation allows none")
    if engine == "ray":
        from py_cli.ray_engine import require_ray  # imported here: Ray is optional for the default engine

        require_ray()  # before any data is prepared or a server started
    rest, test_source = hold_out(task, source, TEST_FRACTION, seed)
    parts = split_source(task, rest, clients, split, seed)
    sim = simulation_task(task, clients, rounds, aggregator)
    test = scoring_data(sim, test_source)
    attackers = attack.clients if attack else 0
    with _server(server) as url:
        create_task(url, sim, admin_token)
        data = [prepare_data(sim, part) for part in parts]
        jobs = [
            ClientJob(
                client=c,
                task=sim,
                source=parts[c],
                server=url,
                attack_factor=attack.factor if attack and c < attackers else None,
                report_rounds=c == attackers,  # an honest client when there is one: it sees every round close
                keep_model=save is not None and c == 0,  # everyone ends with the same global model: one copy
            )
            for c in range(clients)
        ]
        if engine == "ray":
            from py_cli.ray_engine import run_clients

            outcomes = await run_clients(jobs, test_source, address=address, cpus=cpus)
        else:
            outcomes = await asyncio.gather(*(run_client(job, test) for job in jobs))
    if save is not None and outcomes[0].model is not None:
        save.write_bytes(outcomes[0].model)
        print(f"final global model saved to {save}", file=sys.stderr, flush=True)
    local: list[float | None] = [None] * clients
    if baseline:
        alone = replace(sim, scheme="local")
        for c in range(clients):
            trainer = Trainer(alone, build_model(alone), data[c].train, data[c].validation)
            await trainer.fit()
            local[c] = trainer.evaluate(test)[1]
            print(f"local-only baseline {c + 1}/{clients} trained", file=sys.stderr, flush=True)
    return [ClientResult(c, data[c].train.count, c < attackers, local[c], outcomes[c].accuracy) for c in range(clients)]


def results_table(results: list[ClientResult]) -> str:
    """The final table: per client, test accuracy alone and federated."""
    lines = [f"{'client':>6} {'samples':>8} {'role':>8} {'local-only':>11} {'federated':>10}"]
    for r in results:
        local = f"{r.local_accuracy:.3f}" if r.local_accuracy is not None else "-"
        role = "attacker" if r.attacker else "honest"
        lines.append(f"{r.client:>6} {r.samples:>8} {role:>8} {local:>11} {r.federated_accuracy:>10.3f}")
    return "\n".join(lines)
