"""`python -m bench.dec_round`: what a decentralized round costs, by number of peers.

For 3, 5, 8 and 16 CPython peers on loopback (aiortc data channels, a real signaling server process), over a
mesh, a ring and gossip: each peer joins one decentralized task (an MLP of 784-32-10: 25,450 values, 102 KB a
model), shifts its model by its index (as if it had trained on its own data) and runs rounds back to back with no
training between them, so a round's time is the exchange alone: ready, round_peers, opening a data channel to
every neighbour, sending and checking the models, reporting, the server's decision and the average.
Per step: the median over rounds of the round time (all peers done), the bytes of frames each peer sent over its
links (the chunk headers aside), that per model, both relative to the same topology's 3-peer step and to the
mesh at the same number of peers. Mesh and ring peers must end every round with the same model (the row says
whether they did); gossiping peers agree only after several rounds: the row gives how many it took until every
model was within 1e-3 of the first spread from the mean (degree ~ 2 log2 n, a new random graph each round), beside
the bound for one fixed circulant graph of that degree (from its second eigenvalue).

Mesh and ring run plain and with secure aggregation (keys and encrypted shares between every pair, masked
fixed-point changes, the included members' shares opened to each other and the sum unmasked by every peer); a
secure row gives its time and bytes relative to the plain row of the same topology and size. Gossip has no secure
form (each peer mixes its own neighbours' models: there is no one sum to hide them in).
All peers run in this one process (aiortc's SCTP is pure Python), so their CPU is shared: on 2 cores this
measures a whole group's cost, not one device's.

One JSON line per step.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.server_process import running_server
from py_cli.federated import create_task
from py_cli.rtc_link import open_link
from py_cli.websocket_transport import connector, task_url
from py_cpython.crypto import CPythonCrypto
from py_shared.decentralized.peer import DecentralizedPeer
from py_shared.models import build_model
from py_shared.protocol.peer_link import SendSignal
from py_shared.protocol.peer_messages import IceServer
from py_shared.protocol.transport import QueuedTransport
from py_shared.secure.graph import suggested_degree
from py_shared.task import Decentralized, ImageData, MLPModel, SecureAggregation, TaskDefinition, Topology
from py_shared.weights import get_vector, set_vector, vector_size

CONSENSUS = 1e-3  # gossip has agreed once every model is within this share of the first spread of the mean
MAX_GOSSIP_ROUNDS = 30


def bench_task(peers: int, topology: Topology, secure: bool = False) -> TaskDefinition:
    """A decentralized task for `peers` peers with a 25,450-value MLP (secure: changes up to 16 per value)."""
    return TaskDefinition(
        id=f"{topology}{peers}{'s' if secure else ''}",
        title=f"{topology} {peers}",
        secure_aggregation=secure,
        secure=SecureAggregation(clip_value=16.0),
        data=ImageData(width=28, height=28, channels=1, labels=tuple("0123456789")),
        model=MLPModel(hidden=(32,)),
        scheme="decentralized",
        min_participants=peers,
        decentralized=Decentralized(topology=topology, exchange_timeout_s=120),
    )


class Counted:
    """An OpenLink that counts the bytes of every frame sent over the links it opens."""

    def __init__(self) -> None:
        self.sent = 0

    async def __call__(
        self,
        peer_id: str,
        initiator: bool,
        send_signal: SendSignal,
        signals: asyncio.Queue[tuple[str, str]],
        ice_servers: Sequence[IceServer] = (),
        timeout_s: float = 20.0,
    ) -> QueuedTransport:
        link = await open_link(peer_id, initiator, send_signal, signals, tuple(ice_servers), timeout_s)
        plain_send = link.send

        async def counting_send(frame: bytes) -> None:
            self.sent += len(frame)
            await plain_send(frame)

        link.send = counting_send  # type: ignore[method-assign]
        return link


async def run_peers(url: str, task: TaskDefinition, rounds: int) -> dict[str, Any]:
    """Every peer joins, its model shifted by its index (as if it had trained), then runs exchanges: `rounds` of
    them, or, gossiping, until the models agree to CONSENSUS of their first spread (at most MAX_GOSSIP_ROUNDS)."""
    counters = [Counted() for _ in range(task.min_participants)]
    peers = [
        DecentralizedPeer(
            task, build_model(task), 100, connector(task_url(url, task.id, "decentralized")), c, crypto=CPythonCrypto()
        )
        for c in counters
    ]
    await asyncio.gather(*(p.start() for p in peers))
    for i, p in enumerate(peers):
        set_vector(p.model, get_vector(p.model) + float(i))
    first = spread(peers)
    times: list[float] = []
    agreed, to_consensus = True, None
    gossip = task.decentralized.topology == "gossip"
    for r in range(MAX_GOSSIP_ROUNDS if gossip else rounds):
        started = time.perf_counter()
        await asyncio.gather(*(p.round_end(r + 1) for p in peers))
        times.append(time.perf_counter() - started)
        digests = {hashlib.sha256(get_vector(p.model).numpy().tobytes()).hexdigest() for p in peers}
        agreed = agreed and len(digests) == 1
        if to_consensus is None and spread(peers) <= CONSENSUS * first:
            to_consensus = r + 1
            if gossip:
                break
    await asyncio.gather(*(p.leave() for p in peers))
    return {
        "round_s": statistics.median(times),
        "sent_bytes_per_peer": statistics.mean(c.sent for c in counters) / len(times),
        "model_bytes": 4 * vector_size(peers[0].model),
        "agreed": agreed,
        "rounds_to_consensus": to_consensus,
    }


def spread(peers: list[DecentralizedPeer]) -> float:
    """The largest distance of a peer's model from the peers' mean, in the largest coordinate."""
    models = np.stack([get_vector(p.model).numpy() for p in peers])
    return float(np.abs(models - models.mean(axis=0)).max())


def fixed_graph_bound(peers: int, degree: int) -> int:
    """Rounds for a fixed circulant graph of `degree` to shrink the spread to CONSENSUS: the contraction per round
    is the second-largest eigenvalue modulus of (I + A) / (degree + 1). Redrawing the graph every round, as the
    server does, mixes faster than this."""
    if degree >= peers - 1:
        return 1
    second = max(
        abs(1 + 2 * sum(math.cos(2 * math.pi * j * s / peers) for s in range(1, degree // 2 + 1))) / (degree + 1)
        for j in range(1, peers)
    )
    return math.ceil(math.log(CONSENSUS) / math.log(second))


def main() -> int:
    """One JSON line per number of peers."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, nargs="*", default=[3, 5, 8, 16])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    failed = False
    mesh: dict[int, dict[str, Any]] = {}
    plain: dict[tuple[str, int], dict[str, Any]] = {}
    firsts: dict[tuple[str, str], dict[str, Any]] = {}
    runs = [("mesh", "plain"), ("ring", "plain"), ("gossip", "plain"), ("mesh", "secure"), ("ring", "secure")]
    with tempfile.TemporaryDirectory() as data, running_server(Path(data)) as url:
        for (topology, aggregation), n in itertools.product(runs, args.peers):
            task = bench_task(n, topology, aggregation == "secure")  # type: ignore[arg-type]
            create_task(url, task)
            result = asyncio.run(run_peers(url, task, args.rounds))
            reference = firsts.setdefault((topology, aggregation), result)
            if topology == "mesh" and aggregation == "plain":
                mesh[n] = result
            if aggregation == "plain":
                plain[(topology, n)] = result
            row = {
                "bench": "dec_round",
                "topology": topology,
                "aggregation": aggregation,
                "peers": n,
                "round_s": round(result["round_s"], 3),
                "sent_bytes_per_peer": int(result["sent_bytes_per_peer"]),
                "models_sent_per_peer": round(result["sent_bytes_per_peer"] / result["model_bytes"], 2),
                "round_s_vs_first_step": round(result["round_s"] / reference["round_s"], 2),
                "sent_vs_first_step": round(result["sent_bytes_per_peer"] / reference["sent_bytes_per_peer"], 2),
                "every_round_same_model": result["agreed"],
                "rounds_to_consensus": result["rounds_to_consensus"],
                **(
                    {
                        "round_s_vs_mesh": round(result["round_s"] / mesh[n]["round_s"], 2),
                        "sent_vs_mesh": round(result["sent_bytes_per_peer"] / mesh[n]["sent_bytes_per_peer"], 2),
                    }
                    if topology != "mesh" and aggregation == "plain" and n in mesh
                    else {}
                ),
                **(
                    {
                        "round_s_vs_plain": round(result["round_s"] / plain[(topology, n)]["round_s"], 2),
                        "sent_vs_plain": round(
                            result["sent_bytes_per_peer"] / plain[(topology, n)]["sent_bytes_per_peer"], 2
                        ),
                    }
                    if aggregation == "secure"
                    else {}
                ),
                **(
                    {
                        "gossip_degree": min(suggested_degree(n), n - 1),
                        "rounds_to_consensus_fixed_graph_bound": fixed_graph_bound(n, suggested_degree(n)),
                    }
                    if topology == "gossip"
                    else {}
                ),
            }
            failed = failed or (topology != "gossip" and not result["agreed"]) or result["rounds_to_consensus"] is None
            print(json.dumps(row), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
