"""`python -m bench.fed_scale`: how many federated clients one server process holds, and at what memory.

Clients (real WebSocket connections from this process) join one federated task whose model has ~200k values
(0.8 MB per update), in steps of N. At each step: the server's resident memory with N idle participants, then
one round in which all N send an update (the server streams them into a FedAvg sum and broadcasts the new
model to all N), with its wall time and the server's memory afterwards. Streaming aggregation keeps memory
O(model), not O(clients x model): per-client growth is the connection, not the update.
One JSON line per step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from harness.server_process import running_server
from py_cli.federated import create_task
from py_cli.websocket_transport import federated_url
from py_shared.protocol.messages import Join, Update, decode_message, encode_message
from py_shared.task import ImageData, MLPModel, TaskDefinition

HIDDEN = 256


def scale_task() -> TaskDefinition:
    return TaskDefinition(
        id="scale",
        title="scale",
        data=ImageData(width=28, height=28, channels=1, labels=tuple("0123456789")),
        model=MLPModel(hidden=(HIDDEN,)),
        scheme="federated",
        min_participants=1,
    )


def server_rss_mb(url: str) -> float:
    with urllib.request.urlopen(url + "/api/health", timeout=30) as r:
        return round(json.load(r)["rss_bytes"] / 2**20, 1)


async def until_global(connection: ClientConnection, after_round: int) -> int:
    """Read until a global model newer than `after_round` arrives; returns its round."""
    while True:
        message, _ = decode_message(await connection.recv())  # type: ignore[arg-type]
        if message.kind == "global_model" and message.round > after_round:  # type: ignore[union-attr]
            return message.round  # type: ignore[union-attr]


async def join(url: str, task_id: str) -> tuple[ClientConnection, int, int]:
    """A joined connection, the current round and the model's length."""
    connection = await connect(federated_url(url, task_id), max_size=None, open_timeout=60, compression=None)
    await connection.send(encode_message(Join(task_id=task_id, samples=1)))
    size, round_ = 0, -1
    while round_ < 0:
        message, payload = decode_message(await connection.recv())  # type: ignore[arg-type]
        if message.kind == "welcome":
            size = message.vector_size  # type: ignore[union-attr]
        elif message.kind == "global_model":
            round_ = message.round  # type: ignore[union-attr]
            assert len(payload) == 4 * size
    return connection, round_, size


async def run(url: str, steps: list[int]) -> list[dict[str, Any]]:
    task = scale_task()
    create_task(url, task)
    baseline = server_rss_mb(url)
    connections: list[ClientConnection] = []
    rows = []
    round_, size = 0, 0
    for target in steps:
        while len(connections) < target:
            batch = [join(url, task.id) for _ in range(min(50, target - len(connections)))]
            joined = await asyncio.gather(*batch)
            connections += [connection for connection, _, _ in joined]
            round_, size = joined[-1][1], joined[-1][2]
        await asyncio.sleep(1.0)
        idle = server_rss_mb(url)
        update = encode_message(Update(round=round_, samples=1), bytes(4 * size))
        started = time.perf_counter()
        await asyncio.gather(*(c.send(update) for c in connections))
        rounds = await asyncio.gather(*(until_global(c, round_) for c in connections))
        seconds = time.perf_counter() - started
        round_ = rounds[0]
        rows.append(
            {
                "bench": "fed_scale",
                "clients": target,
                "model_values": size,
                "server_rss_mb_start": baseline,
                "server_rss_mb_idle": idle,
                "server_rss_mb_after_round": server_rss_mb(url),
                "round_s": round(seconds, 2),
                "update_mb_per_s": round(target * 4 * size / 1e6 / seconds, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    await asyncio.gather(*(c.close() for c in connections))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, nargs="*", default=[10, 100, 300, 1000])
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # both sides hold one socket per client
    limits = (
        "--max-connections",
        str(max(args.steps) + 10),
        "--max-connections-per-address",
        str(max(args.steps) + 10),
    )
    with tempfile.TemporaryDirectory() as data, running_server(Path(data), extra_args=limits) as url:
        asyncio.run(run(url, args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
