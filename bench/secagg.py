"""`python -m bench.secagg`: what secure aggregation costs beside plain federated rounds, in bytes and time.

For each number of clients and model size, in the same run and against the same server process, three
federations of the same MLP (2 tabular features, hidden (h, h), 2 classes; h picked for the parameter count):
plain FedAvg, secure aggregation with the complete mask graph (Bonawitz et al. 2017), and with the sparse graph
(neighbours 0: 2*ceil(log2 n), Bell et al. 2020). min_participants = clients, so every round waits for everyone.

- bytes_sent_per_client: the length of every WebSocket message a client sends in a round (frame headers and
  payloads; WebSocket/TCP framing not counted), median over clients and rounds; the ratio to plain.
- round_s: from the moment every client starts its exchange (round_end) to the moment the last one holds the
  new global model; median over the measured rounds, after one warm-up round (kernel compilation) left out.
- phases_s: where a round's time goes, from the clients' send/arrival times and the server's log lines
  ("secure round N (attempt A)", "sum of ... unmasked", "round N closed"); client_cpu_s / server_cpu_s: CPU
  seconds the client processes and the server process used per round.
- max_abs_error: the new global model minus the old against the exact weighted mean of the clients' updates.

No training: each client's update is random (the global model plus N(0, 0.01^2) noise per value). The clients
are real WebSocket clients (FederatedClient / SecureFederatedClient with CPythonCrypto) run as asyncio tasks in
2 worker processes ('spawn'), on a machine whose cores they share with the server process: round times include
the clients' CPU contention, which a real deployment (one device per client) would not have.
One JSON line per configuration, then a summary against the goals (<= 1.1x bytes, <= 2x time at 100 x 1M).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import re
import resource
import statistics
import struct
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

os.environ.setdefault("DEV", "CPU")

import numpy as np

WORKERS = 2
NOISE_STD = 0.01
MODES = ("plain", "secure-complete", "secure-sparse")
GOAL_CLIENTS, GOAL_PARAMS, GOAL_BYTES, GOAL_TIME = 100, 1_000_000, 1.1, 2.0
Events = list[tuple[float, str, str, int]]  # (time, "sent" | "received", message kind, bytes)


@dataclass(frozen=True)
class Config:
    """One federation to measure."""

    clients: int
    params: int
    mode: str
    rounds: int
    max_seconds: float
    phase_timeout_s: float

    @property
    def hidden(self) -> int:
        """h with h^2 + 6h + 2 (the MLP 2 -> h -> h -> 2) closest to `params`."""
        return round(math.sqrt(self.params + 7) - 3)

    @property
    def task_id(self) -> str:
        return f"secagg-{self.clients}-{self.params}-{self.mode}-{time.time_ns() % 10**9}"


def task_document(config: Config, task_id: str) -> dict[str, Any]:
    """The task's JSON: a tabular MLP, all clients per round, secure knobs by mode."""
    doc: dict[str, Any] = {
        "id": task_id,
        "title": "secagg bench",
        # no standardisation: a secure tabular task would first agree on feature statistics, which has no data here
        "data": {
            "kind": "tabular",
            "feature_columns": ["a", "b"],
            "label_column": "y",
            "label_values": ["0", "1"],
            "normalize": False,
        },
        "model": {"kind": "mlp", "hidden": [config.hidden, config.hidden]},
        "scheme": "federated",
        "min_participants": config.clients,
    }
    if config.mode != "plain":
        graph = config.mode.removeprefix("secure-")
        doc["secure_aggregation"] = True
        doc["secure"] = {"graph": graph, "neighbours": 0, "max_participants": max(100, config.clients)}
        doc["secure"]["phase_timeout_s"] = config.phase_timeout_s
    return doc


def frame_kind(frame: bytes) -> str:
    """The `kind` of a frame's JSON header, without reading its payload."""
    length = struct.unpack_from("<I", frame, 3)[0]
    return str(json.loads(frame[7 : 7 + length])["kind"])


# ---- the worker processes: a share of the clients each, as asyncio tasks ----


class SimClient:
    """A federated client whose connections record every frame sent and received."""

    def __init__(self, task: Any, number: int, url: str) -> None:
        from py_cli.websocket_transport import connector, federated_url
        from py_cpython.crypto import CPythonCrypto
        from py_shared.federated.client import FederatedClient
        from py_shared.federated.secure_client import SecureFederatedClient
        from py_shared.models import build_model

        self.events: Events = []
        self.loaded_at = 0.0
        self.samples = 100 + number
        self.rng = np.random.default_rng(number)
        model = build_model(task)
        connect = self._counting(connector(federated_url(url, task.id)))
        options: dict[str, Any] = {"name": f"c{number}", "on_new_global": self._loaded}
        if task.secure_aggregation:
            options["crypto"] = CPythonCrypto()
        kind = SecureFederatedClient if task.secure_aggregation else FederatedClient
        self.client = kind(task, model, self.samples, connect, **options)

    def _loaded(self) -> None:
        self.loaded_at = time.time()

    def _counting(self, connect: Callable[[], Any]) -> Callable[[], Any]:
        events = self.events

        async def open_connection() -> Any:
            transport = await connect()
            send, deliver = transport.send, transport.deliver

            async def counted_send(frame: bytes) -> None:
                events.append((time.time(), "sent", frame_kind(frame), len(frame)))
                await send(frame)

            def counted_deliver(frame: bytes) -> None:
                events.append((time.time(), "received", frame_kind(frame), len(frame)))
                deliver(frame)

            transport.send, transport.deliver = counted_send, counted_deliver
            return transport

        return open_connection

    def perturb(self) -> np.ndarray:
        """Set the model to the global model plus noise; returns the update times the sample count."""
        from tinygrad import Tensor

        from py_shared.weights import set_vector

        base = self.client.global_vector
        assert base is not None
        noise = self.rng.standard_normal(int(base.shape[0]), dtype=np.float32) * NOISE_STD
        set_vector(self.client.model, (base + Tensor(noise, device=base.device)).realize())
        return noise * self.samples


async def worker_loop(conn: Connection, url: str, doc: dict[str, Any], numbers: list[int]) -> None:
    """Join, then answer the main process's commands: prepare a round, run it, stop."""
    from py_shared.task import task_from_json
    from py_shared.weights import get_vector

    task = task_from_json(doc)
    clients = [SimClient(task, n, url) for n in numbers]
    await asyncio.gather(*(c.client.start() for c in clients))
    conn.send("joined")
    weighted, before = np.zeros(1), np.zeros(1)
    while True:
        command, argument = await asyncio.to_thread(conn.recv)
        if command == "prepare":
            assert clients[0].client.global_vector is not None
            before = clients[0].client.global_vector.numpy().astype(np.float64)
            weighted = sum((c.perturb() for c in clients), np.zeros(1, dtype=np.float64))
            for c in clients:
                c.events.clear()
            conn.send("prepared")
        elif command == "go":
            await asyncio.sleep(max(0.0, argument - time.time()))
            conn.send(await timed_round(clients, weighted, before, get_vector))
        else:
            await asyncio.gather(*(c.client.leave() for c in clients))
            conn.send("left")
            return


async def timed_round(clients: list[SimClient], weighted: Any, before: np.ndarray, get_vector: Any) -> dict:
    """Every client's exchange at once; what the main process needs to report the round."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()
    await asyncio.gather(*(c.client.round_end(0) for c in clients))
    after = resource.getrusage(resource.RUSAGE_SELF)
    delta = get_vector(clients[0].client.model).numpy().astype(np.float64) - before
    return {
        "started": started,
        "loaded": [c.loaded_at for c in clients],
        "events": [list(c.events) for c in clients],
        "cpu_s": (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime),
        "weighted": weighted,
        "samples": sum(c.samples for c in clients),
        "delta": delta,
    }


def worker_main(conn: Connection, url: str, doc: dict[str, Any], numbers: list[int]) -> None:
    """A worker process's entry point (spawned)."""
    asyncio.run(worker_loop(conn, url, doc, numbers))


# ---- the main process: the server, the workers, the figures ----


def child_pid(needle: bytes) -> int | None:
    """The pid of this process's child whose command line contains `needle` (the server)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                    if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                        return int(entry)
            except (OSError, ValueError, IndexError):
                continue
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process `pid` so far (0 if unknown)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_task(url: str, doc: dict[str, Any]) -> None:
    body = json.dumps({"task": doc, "join_token": ""}).encode()
    request = urllib.request.Request(f"{url}/api/tasks", body, method="POST")
    request.add_header("content-type", "application/json")
    urllib.request.urlopen(request, timeout=30).close()


def server_rss_mb(url: str) -> float:
    with urllib.request.urlopen(url + "/api/health", timeout=30) as r:
        return round(json.load(r)["rss_bytes"] / 2**20, 1)


LOG_TIME = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ [\w.]+: task (\S+): "
LOG_PATTERNS = {
    "keys": re.compile(LOG_TIME + r"secure round (\d+) \(attempt (\d+)\): (\d+) participants, threshold (\d+)"),
    "unmasked": re.compile(LOG_TIME + r"secure round (\d+): the sum of \d+ of \d+ inputs unmasked"),
    "closed": re.compile(LOG_TIME + r"round (\d+) closed with \d+ updates in"),
    "redone": re.compile(LOG_TIME + r"secure round (\d+) attempt \d+ redone"),
    "left_out": re.compile(LOG_TIME + r"\S+ left out of the secure round"),
}


def server_events(log_path: Path, task_id: str) -> dict[tuple[str, int], Any]:
    """(event, round) -> time (or for "keys" (time, attempt, threshold)) from the server's log, for one task."""
    found: dict[tuple[str, int], Any] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        for name, pattern in LOG_PATTERNS.items():
            m = pattern.match(line)
            if m and m.group(2) == task_id:
                at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                round_ = int(m.group(3)) if m.lastindex and m.lastindex >= 3 else -1
                if name == "keys":
                    found[(name, round_)] = (at, int(m.group(4)), int(m.group(6)))
                elif name in ("redone", "left_out"):
                    found[(name, len(found))] = at
                else:
                    found[(name, round_)] = at
    return found


class Federation:
    """The worker processes of one configuration, driven round by round."""

    def __init__(self, url: str, doc: dict[str, Any], clients: int, deadline: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.deadline, self.pipes, self.processes = deadline, [], []
        for w in range(WORKERS):
            numbers = list(range(w, clients, WORKERS))
            ours, theirs = context.Pipe()
            process = context.Process(target=worker_main, args=(theirs, url, doc, numbers), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def ask(self, command: str | None = None, argument: Any = None) -> list[Any] | None:
        """Send `command` to every worker and collect their answers; None if the deadline passed first."""
        if command is not None:
            for pipe in self.pipes:
                pipe.send((command, argument))
        answers = []
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            if not pipe.poll(max(0.0, self.deadline - time.time())):
                return None
            if not process.is_alive() and not pipe.poll():
                raise RuntimeError(f"worker {process.pid} exited with {process.exitcode}")
            answers.append(pipe.recv())
        return answers

    def close(self, graceful: bool) -> None:
        if graceful:
            self.deadline = time.time() + 60
            self.ask("leave")
        for process in self.processes:
            if process.is_alive():
                process.terminate()
            process.join(10)


def run_config(config: Config, url: str, log_path: Path, server_pid: int | None) -> dict[str, Any]:
    """Warm-up round plus `config.rounds` measured rounds of one federation; the configuration's JSON line."""
    task_id = config.task_id
    doc = task_document(config, task_id)
    create_task(url, doc)
    began = time.time()
    federation = Federation(url, doc, config.clients, began + config.max_seconds)
    rounds: list[dict[str, Any]] = []
    cut = federation.ask() is None
    for number in range(config.rounds + 1):
        if cut:
            break
        cpu = cpu_seconds(server_pid)
        answers = federation.ask("prepare") and federation.ask("go", time.time() + 0.2)
        if not answers:
            cut = True
            break
        if number > 0:  # round 0: warm-up (compiling the kernels), left out
            rounds.append({"round": number, "workers": answers, "server_cpu_s": cpu_seconds(server_pid) - cpu})
    federation.close(graceful=not cut)
    return summarize(config, rounds, server_events(log_path, task_id), cut, time.time() - began, url)


def phases(mode: str, start: float, events: list[Events], loaded: float, log: dict, round_: int) -> dict[str, float]:
    """Where one round's time went: consecutive intervals between the first/last moments of its messages."""

    def first(direction: str, kind: str) -> float:
        return min((t for e in events for t, d, k, _ in e if d == direction and k == kind), default=math.nan)

    def last(direction: str, kind: str) -> float:
        return max((t for e in events for t, d, k, _ in e if d == direction and k == kind), default=math.nan)

    closed = log.get(("closed", round_), math.nan)
    if mode == "plain":
        marks = [
            ("updates_sent", last("sent", "update")),
            ("server_aggregate_store", closed),
            ("broadcast_load", loaded),
        ]
    else:
        marks = [
            ("advertise", first("received", "key_list")),
            ("share_keys", first("received", "forwarded_shares")),
            ("mask_upload_sum", first("received", "unmask_request")),
            ("unmask_answers", last("sent", "unmask_shares")),
            ("server_unmask", log.get(("unmasked", round_), math.nan)),
            ("server_decode_store", closed),
            ("broadcast_load", loaded),
        ]
    out, previous = {}, start
    for name, at in marks:
        out[name] = round(at - previous, 3)
        previous = at
    return out


def round_figures(config: Config, r: dict[str, Any], log: dict) -> dict[str, Any]:
    """Bytes, time, phases, CPU and error of one measured round."""
    workers = r["workers"]
    start = min(w["started"] for w in workers)
    events = [e for w in workers for e in w["events"]]
    loaded = max(t for w in workers for t in w["loaded"])
    weighted = sum(w["weighted"] for w in workers)
    expected = weighted / sum(w["samples"] for w in workers)
    return {
        "round_s": loaded - start,
        "sent": [sum(n for _, d, _, n in e if d == "sent") for e in events],
        "received": [sum(n for _, d, _, n in e if d == "received") for e in events],
        "phases": phases(config.mode, start, events, loaded, log, r["round"]),
        "client_cpu_s": sum(w["cpu_s"] for w in workers),
        "server_cpu_s": r["server_cpu_s"],
        "error": float(np.max(np.abs(workers[0]["delta"] - expected))),
    }


def summarize(config: Config, rounds: list[dict], log: dict, cut: bool, seconds: float, url: str) -> dict[str, Any]:
    """The configuration's JSON line."""
    from py_shared.secure.graph import suggested_degree

    n = config.clients
    degree = {"plain": 0, "secure-complete": n - 1, "secure-sparse": min(suggested_degree(n), n - 1)}[config.mode]
    keys = [v for (name, _), v in log.items() if name == "keys"]
    row: dict[str, Any] = {
        "bench": "secagg",
        "clients": n,
        "params": config.params,
        "mode": config.mode,
        "neighbours": degree,
        "threshold": keys[-1][2] if keys else None,
        "rounds_measured": len(rounds),
    }
    if rounds:
        figures = [round_figures(config, r, log) for r in rounds]
        row.update(
            bytes_sent_per_client=int(statistics.median(b for f in figures for b in f["sent"])),
            bytes_received_per_client=int(statistics.median(b for f in figures for b in f["received"])),
            round_s=round(statistics.median(f["round_s"] for f in figures), 3),
            rounds_s=[round(f["round_s"], 3) for f in figures],
            phases_s={k: round(statistics.median(f["phases"][k] for f in figures), 3) for k in figures[0]["phases"]},
            client_cpu_s=round(statistics.median(f["client_cpu_s"] for f in figures), 2),
            server_cpu_s=round(statistics.median(f["server_cpu_s"] for f in figures), 2),
            max_abs_error=float(f"{max(f['error'] for f in figures):.3g}"),
        )
    row.update(
        attempts_redone=sum(1 for name, _ in log if name == "redone"),
        left_out=sum(1 for name, _ in log if name == "left_out"),
        server_rss_mb=server_rss_mb(url),
        config_s=round(seconds, 1),
        cut=cut,
    )
    if cut:
        row["cut_reason"] = f"stopped after {config.max_seconds:g} s (--max-seconds)"
    return row


def with_ratios(row: dict[str, Any], plain: dict[str, Any] | None) -> dict[str, Any]:
    """The row with bytes_ratio_vs_plain and time_ratio_vs_plain (None where either side is missing)."""
    for key, source in (("bytes_ratio_vs_plain", "bytes_sent_per_client"), ("time_ratio_vs_plain", "round_s")):
        ok = plain is not None and source in plain and source in row and plain[source]
        row[key] = round(row[source] / plain[source], 3) if ok else None  # type: ignore[index]
    return row


def goal_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The verdict against the goals at GOAL_CLIENTS x GOAL_PARAMS."""
    verdicts: dict[str, Any] = {}
    for row in rows:
        if row["mode"] != "plain" and row["clients"] == GOAL_CLIENTS and row["params"] == GOAL_PARAMS:
            b, t = row["bytes_ratio_vs_plain"], row["time_ratio_vs_plain"]
            met = b is not None and t is not None and b <= GOAL_BYTES and t <= GOAL_TIME
            verdicts[row["mode"]] = {"bytes_ratio": b, "time_ratio": t, "met": met, "cut": row["cut"]}
    return {
        "bench": "secagg",
        "summary": f"goals at {GOAL_CLIENTS} clients x {GOAL_PARAMS} parameters: bytes <= {GOAL_BYTES}x plain, "
        f"round time <= {GOAL_TIME}x plain",
        "results": verdicts or "not measured in this run",
    }


def setup_line(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "bench": "secagg",
        "setup": {
            "updates": f"random, no training: global model + N(0, {NOISE_STD}^2) per value",
            "clients_run_in": f"{WORKERS} worker processes (spawn), asyncio tasks each",
            "cores": os.cpu_count(),
            "note": "the clients share the cores with the server process: round times include client CPU contention",
            "bytes": "length of every WebSocket message a client sends in a round (no WebSocket/TCP framing)",
            "round_s": "all clients call round_end -> the last holds the new global model; median, warm-up excluded",
            "rounds": args.rounds,
            "phase_timeout_s": args.phase_timeout,
            "max_seconds_per_config": args.max_seconds,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="5,20,100", help="comma-separated client counts")
    parser.add_argument("--params", default="100000,1000000", help="comma-separated model sizes")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds, after one warm-up round")
    parser.add_argument("--max-seconds", type=float, default=600, help="cut a configuration after this long")
    parser.add_argument("--phase-timeout", type=float, default=600, help="the tasks' secure.phase_timeout_s")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 clients, 100k parameters, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.params, args.rounds = "5", "100000", 1
    clients = [int(c) for c in args.clients.split(",")]
    sizes = [int(p) for p in args.params.split(",")]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limits = (
        "--max-connections",
        str(2 * max(clients) + 10),
        "--max-connections-per-address",
        str(2 * max(clients) + 10),
    )
    print(json.dumps(setup_line(args)), flush=True)
    from harness.server_process import running_server

    rows = []
    with tempfile.TemporaryDirectory() as data:
        log_path = Path(data) / "server.log"
        with running_server(Path(data) / "server", log_path=log_path, extra_args=limits) as url:
            server_pid = child_pid(b"-m\0server\0")
            for n in clients:
                for p in sizes:
                    plain = None
                    for mode in MODES:
                        config = Config(n, p, mode, args.rounds, args.max_seconds, args.phase_timeout)
                        row = with_ratios(run_config(config, url, log_path, server_pid), plain)
                        plain = row if mode == "plain" else plain
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    print(json.dumps(goal_summary(rows)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
