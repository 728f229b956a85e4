"""`python -m bench.fed_round`: what federation costs on top of training, and how fast the server aggregates.

1. Protocol overhead per round for 2, 8 and 32 CPython clients (asyncio tasks in this process, real WebSockets,
   a real server process), training the MNIST CNN two batches per round. The clients share this process's CPU,
   so their compute is serial; a round's overhead is what follows the last client's compute: from its update
   leaving to the last client having the new global model loaded (framing, sending, checking, aggregating,
   storing the model, broadcasting, loading it back). Compute = round wall time - overhead.
2. Server aggregation throughput: the server's path for an update (bytes -> checked vector -> streaming FedAvg
   sum) in MB/s beside a plain numpy running sum over the same vectors, in the same run.

One JSON line per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("DEV", "CPU")

import numpy as np

from harness.server_process import running_server
from py_cli.federated import create_task, train_federated
from py_shared.data.examples import Examples
from py_shared.federated.client import FederatedClient
from py_shared.task import CNNModel, ConvLayer, ImageData, TaskDefinition, Training
from py_shared.training.device_data import DeviceExamples
from py_shared.training.pipeline import PreparedData

STEPS_PER_ROUND = 2
BATCH = 32


def bench_task(clients: int, rounds: int) -> TaskDefinition:
    return TaskDefinition(
        id=f"bench-{clients}-{time.time_ns() % 10**9}",
        title="bench",
        data=ImageData(width=28, height=28, channels=1, labels=tuple("0123456789")),
        model=CNNModel(conv=(ConvLayer(channels=16), ConvLayer(channels=32)), dense=(64,)),
        training=Training(
            epochs=1,
            steps_per_epoch=rounds * STEPS_PER_ROUND,
            batch_size=BATCH,
            round_duration=STEPS_PER_ROUND,
            round_unit="batches",
            validation_fraction=0.0,
        ),
        scheme="federated",
        min_participants=clients,
    )


def client_data(seed: int, count: int) -> PreparedData:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28, 1), dtype=np.uint8)
    labels = tuple(int(v) for v in rng.integers(0, 10, size=count))
    return PreparedData(DeviceExamples(Examples(images.tobytes(), "uint8", (28, 28, 1), labels)), None, "")


async def one_federation(url: str, clients: int, rounds: int) -> dict[str, Any]:
    task = bench_task(clients, rounds)
    create_task(url, task)
    sent: list[float] = []  # when each client finished its local compute and sent its update, every round
    resumed: list[float] = []  # when each client had the next global model loaded and went back to training

    class Timed(FederatedClient):
        async def round_end(self, local_round: int) -> None:
            sent.append(time.perf_counter())
            await super().round_end(local_round)
            resumed.append(time.perf_counter())

    data = [client_data(c, rounds * STEPS_PER_ROUND * BATCH) for c in range(clients)]
    await asyncio.gather(*(train_federated(task, data[c], url, client_class=Timed) for c in range(clients)))
    # the clients' compute interleaves on this one CPU, so per round the protocol's share is the critical path
    # after the last update left: until the last client has the new model (frame, send, check, aggregate, store,
    # broadcast, load); round 1 includes compiling every client's JIT and is left out
    last_sent = [max(sent[r * clients : (r + 1) * clients]) for r in range(rounds)]
    last_resumed = [max(resumed[r * clients : (r + 1) * clients]) for r in range(rounds)]
    walls = [b - a for a, b in itertools.pairwise(last_resumed)]
    overheads = [b - a for a, b in zip(last_sent[1:], last_resumed[1:], strict=True)]
    return {
        "bench": "fed_round",
        "clients": clients,
        "rounds_measured": len(walls),
        "ms_round_wall": round(1000 * statistics.median(walls), 1),
        "ms_round_compute": round(1000 * (statistics.median(walls) - statistics.median(overheads)), 1),
        "ms_round_overhead": round(1000 * statistics.median(overheads), 1),
        "ms_overhead_per_client": round(1000 * statistics.median(overheads) / clients, 2),
    }


def aggregation_throughput(values: int, updates: int) -> list[dict[str, Any]]:
    """MB/s of updates turned into a FedAvg aggregate: the server's path vs numpy, on the same vectors."""
    from py_shared.aggregation.accumulator import RoundAccumulator
    from py_shared.protocol.vectors import checked_vector
    from server.federation.room import DEVICE

    rng = np.random.default_rng(0)
    payloads = [rng.normal(size=values).astype(np.float32).tobytes() for _ in range(updates)]
    task = replace(bench_task(updates, 1), aggregator="fedavg")
    megabytes = updates * values * 4 / 1e6
    rows = []
    for _ in range(3):  # the first includes compiling the kernels
        started = time.perf_counter()
        accumulator = RoundAccumulator(task, values, DEVICE)
        for payload in payloads:
            accumulator.add(checked_vector(payload, values, DEVICE), 100)
        ours = accumulator.result().numpy()
        pydisco_s = time.perf_counter() - started
        started = time.perf_counter()
        total = np.zeros(values, dtype=np.float32)
        for payload in payloads:
            total += np.frombuffer(payload, dtype=np.float32) * 100
        reference = total / (100 * updates)
        numpy_s = time.perf_counter() - started
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)
        rows.append((pydisco_s, numpy_s))
    pydisco_s = min(r[0] for r in rows[1:])
    numpy_s = min(r[1] for r in rows[1:])
    return [
        {
            "bench": "aggregation",
            "impl": "pydisco-server",
            "updates": updates,
            "values": values,
            "mb_per_s": round(megabytes / pydisco_s, 1),
        },
        {
            "bench": "aggregation",
            "impl": "numpy-running-sum",
            "updates": updates,
            "values": values,
            "mb_per_s": round(megabytes / numpy_s, 1),
        },
        {"bench": "aggregation", "ratio_numpy_over_pydisco": round(pydisco_s / numpy_s, 2)},
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="*", default=[2, 8, 32])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--values", type=int, default=1_000_000, help="update length for the throughput test")
    parser.add_argument("--updates", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, running_server(Path(data)) as url:
        for clients in args.clients:
            print(json.dumps(asyncio.run(one_federation(url, clients, args.rounds))), flush=True)
    for row in aggregation_throughput(args.values, args.updates):
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
