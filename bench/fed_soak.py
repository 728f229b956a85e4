"""`python -m bench.fed_soak [--minutes 10]`: one federated task kept running while a tenth of its clients misbehave.

A real server and a FedAvg task (an MLP of 784-32-10: 25,450 values) whose rounds close 2 s after their first
update (federation.round_deadline_s) once min_participants = 180 updates arrived. 180 honest clients (one worker
process, bench.fed_clients) each send, every round, a deterministic update (fed_clients.honest_update: seeded by
client and round, 1 to 5 samples); the driver computes the exact FedAvg aggregate and checks that the new global
model is the previous one plus it. 20 misbehaving clients (another process) change behaviour every round, client
j playing mode (j + round) % 5 of: garbage frames, floods of bad frames until the server disconnects them (and
reconnecting), non-readers (join, then never read; each stays connected for 10 rounds), updates that overflow
(3e38, NaN, -inf, one 1e30 among zeros, one value short: each must be refused by name) and reconnect storms. None
of it may change an aggregate, stall a round, drop an honest client or raise in the server.

Exact, stated: the server sums updates x samples in float32 in arrival order and divides by the total samples;
the driver sums in float64. Every value of the new model must be within 1e-5 x max|aggregate| plus one float32
ulp of previous + aggregate. One honest update missing or extra moves the aggregate's values by over 1000 times
that (the median value; the largest, by 10,000 times).
Memory: the server's VmRSS (what /api/health reports) every 2 s from /proc; flat means the median of the run's
last 20 s is within 10% of the median of the 20 s after warm-up (the first minute; a third of a shorter run).
The server's log is captured and its tracebacks counted.

One JSON line per minute and a summary.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.fed_clients import Workers, honest_update, honest_worker, misbehaving_worker, rss_mb, server_pid
from harness.server_process import running_server
from py_cli.federated import create_task
from py_shared.task import Federation, ImageData, MLPModel, TaskDefinition

ROUND_TIMEOUT_S = 60.0  # a round that has not closed by then has stalled
LINGER_ROUNDS = 10  # how long a non-reader stays connected
TOLERANCE = 1e-5  # of max|aggregate|, plus one float32 ulp of each model value


def soak_task(honest: int, deadline_s: float, hidden: int) -> TaskDefinition:
    """A FedAvg task whose rounds close once every honest update is in and `deadline_s` passed."""
    return TaskDefinition(
        id="soak",
        title="soak",
        data=ImageData(width=28, height=28, channels=1, labels=tuple("0123456789")),
        model=MLPModel(hidden=(hidden,)),
        scheme="federated",
        min_participants=honest,
        aggregator="fedavg",
        federation=Federation(round_deadline_s=deadline_s),
    )


def expected_aggregate(indices: list[int], round_: int, size: int) -> npt.NDArray[np.float64]:
    """The FedAvg aggregate of the honest updates of `round_`, in float64."""
    total, weight = np.zeros(size), 0
    for index in indices:
        values, samples = honest_update(index, round_, size)
        total += values.astype(np.float64) * samples
        weight += samples
    return total / weight


def check_round(
    previous: npt.NDArray[np.float32], new: npt.NDArray[np.float32], aggregate: npt.NDArray[np.float64]
) -> tuple[bool, float]:
    """Whether `new` is `previous` + `aggregate` within TOLERANCE (see the module's docstring), and the largest
    error relative to max|aggregate|."""
    if new.shape != previous.shape or not np.isfinite(new).all():
        return False, float("inf")
    target = previous.astype(np.float64) + aggregate
    error = np.abs(new.astype(np.float64) - target)
    scale = float(np.abs(aggregate).max())
    ulp = np.spacing(np.abs(target).astype(np.float32)).astype(np.float64)
    return bool((error <= TOLERANCE * scale + ulp).all()), float(error.max() / scale)


class RssSampler(threading.Thread):
    """The server's resident memory every `every_s` seconds, as (seconds since start, MiB)."""

    def __init__(self, pid: int, every_s: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []
        self.started = time.monotonic()
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until `done` is set or the server is gone."""
        while not self.done.wait(self.every_s):
            try:
                self.samples.append((time.monotonic() - self.started, rss_mb(self.pid)))
            except OSError:
                return

    def median(self, start: float, end: float) -> float:
        """The median RSS sampled in [start, end) seconds (NaN if none was)."""
        values = [mb for t, mb in self.samples if start <= t < end]
        return statistics.median(values) if values else float("nan")


def log_findings(path: Path) -> dict[str, Any]:
    """Tracebacks, ERROR lines and drops in the server's log, with the first traceback's text."""
    text = path.read_text(errors="replace")
    first = ""
    if (at := text.find("Traceback")) >= 0:
        end = re.search(r"\n\d{4}-\d\d-\d\d ", text[at:])
        first = text[at : at + (end.start() if end else 3000)][:3000]
    drops = Counter(m.group(1) for m in re.finditer(r"dropped \w+: (.*)", text))
    return {
        "tracebacks": text.count("Traceback"),
        "error_lines": text.count(" ERROR "),
        "warning_lines": text.count(" WARNING "),
        "dropped_by_server": dict(drops),
        "first_traceback": first,
    }


def soak(args: argparse.Namespace, log_path: Path, data: Path) -> dict[str, Any]:
    """Run the soak against a server whose data and log go to `data` and `log_path`; returns the summary."""
    duration, warmup = args.minutes * 60, min(60.0, args.minutes * 20)
    limits = ("--max-connections", "1000", "--max-connections-per-address", "1000")  # all clients are 127.0.0.1
    with running_server(data, log_path=log_path, extra_args=limits) as url:
        pid = server_pid(url)
        task = soak_task(args.honest, args.deadline, args.hidden)
        create_task(url, task)
        indices = list(range(args.honest))
        shares = [indices[w :: args.honest_workers] for w in range(args.honest_workers)]
        honest = Workers(honest_worker, [(url, task.id, share, True, ROUND_TIMEOUT_S) for share in shares])
        crowd = Workers(misbehaving_worker, [(url, task.id, args.misbehaving, LINGER_ROUNDS)])
        sampler = RssSampler(pid, 2.0)
        summary: dict[str, Any] = {"bench": "fed_soak", "minutes": args.minutes}
        try:
            joins = honest.ask(("join",), 600)
            round_, size = joins[0]["round"], joins[0]["size"]
            summary["honest_rejoins_while_joining"] = sum(j["rejoins"] for j in joins)
            model = np.frombuffer(joins[0]["model"], dtype=np.float32)
            rounds: list[dict[str, Any]] = []
            honest_errors: Counter[str] = Counter()
            sampler.start()
            minute, started = 1, time.monotonic()
            while time.monotonic() - started < duration:
                if time.monotonic() - started >= 60 * minute:
                    print(json.dumps(progress(minute, rounds, sampler, crowd, log_path)), flush=True)
                    minute += 1
                crowd.ask(("phase", round_), 60)
                go = time.monotonic()
                replies = honest.ask(("round", round_, True), ROUND_TIMEOUT_S + 120)
                received, rejoined = sum(r["received"] for r in replies), sum(r["rejoined"] for r in replies)
                for r in replies:
                    honest_errors.update(r["errors"])
                if not any(r["model"] for r in replies):
                    # every honest connection was lost before the new model came: rejoin (the welcome brings the
                    # current model) and wait for the round to close, without sending again
                    replies = honest.ask(("round", round_, False), ROUND_TIMEOUT_S + 120)
                    rejoined += sum(r["rejoined"] for r in replies)
                models = {r["model"] for r in replies if r["model"]}
                new_round = max(r["new_round"] for r in replies)
                outcome: dict[str, Any] = {
                    "round": round_,
                    "s": time.monotonic() - go,
                    "received": received,
                    "rejoined": rejoined,
                    "one_model": len(models) == 1 and all(r["distinct_models"] <= 1 for r in replies),
                }
                rounds.append(outcome)
                if new_round != round_ + 1 or len(models) != 1:
                    outcome["exact"], outcome["stalled"] = False, not models
                    if not models:
                        break  # no honest client has a model newer than round_: the task is stuck, the soak too
                    model, round_ = np.frombuffer(next(iter(models)), dtype=np.float32), new_round
                    continue
                new = np.frombuffer(next(iter(models)), dtype=np.float32)
                exact, outcome["rel_error"] = check_round(model, new, expected_aggregate(indices, round_, size))
                outcome["exact"] = exact and outcome["one_model"]
                model, round_ = new, new_round
            summary.update(final(args, rounds, sampler, warmup, honest_errors, size))
        finally:
            sampler.done.set()
            stopped = honest.stop()  # first: the crowd's last disconnections must not count against them
            summary["honest_dropped"] = sum(s["dropped"] for s in stopped) if stopped else "unknown"
            summary["misbehaviour"] = next(iter(crowd.stop()), {})
    summary["server_log"] = log_findings(log_path)
    summary["goals"] = {
        "every_honest_round_exact": summary.get("rounds", 0) > 0 and summary.get("rounds_exact") == summary["rounds"],
        "rss_flat": summary.get("rss_flat") is True,
        "zero_tracebacks": summary["server_log"]["tracebacks"] == 0,
        "no_honest_client_dropped": summary["honest_dropped"] == 0 and not summary.get("honest_rejoins_while_joining"),
    }
    return summary


def progress(
    minute: int, rounds: list[dict[str, Any]], sampler: RssSampler, crowd: Workers, log: Path
) -> dict[str, Any]:
    """The soak so far, for the per-minute line."""
    recent = [r["s"] for r in rounds[-40:]]
    return {
        "bench": "fed_soak",
        "minute": minute,
        "rounds": len(rounds),
        "rounds_exact": sum(1 for r in rounds if r["exact"]),
        "honest_rejoins": sum(r["rejoined"] for r in rounds),
        "round_s_median_recent": round(statistics.median(recent), 2) if recent else None,
        "server_rss_mb": sampler.samples[-1][1] if sampler.samples else None,
        "server_tracebacks": log.read_text(errors="replace").count("Traceback"),
        "misbehaviour": crowd.ask(("stats",), 60)[0],
    }


def final(
    args: argparse.Namespace,
    rounds: list[dict[str, Any]],
    sampler: RssSampler,
    warmup: float,
    honest_errors: Counter[str],
    size: int,
) -> dict[str, Any]:
    """The summary's measurements: rounds, exactness, round times and memory."""
    end = sampler.samples[-1][0] if sampler.samples else 0.0
    warm, last = sampler.median(warmup, warmup + 20), sampler.median(end - 20, end + 1)
    growth = (last - warm) / warm * 100
    after = [mb for t, mb in sampler.samples if t >= warmup]
    times = [r["s"] for r in rounds]
    return {
        "honest": args.honest,
        "misbehaving": args.misbehaving,
        "model_values": size,
        "round_deadline_s": args.deadline,
        "rounds": len(rounds),
        "rounds_exact": sum(1 for r in rounds if r["exact"]),
        "rounds_stalled": sum(1 for r in rounds if r.get("stalled")),
        "rounds_with_honest_drops": sum(1 for r in rounds if r["received"] < args.honest or r["rejoined"]),
        "max_rel_error": max((r.get("rel_error", 0.0) for r in rounds), default=None),
        "tolerance": f"{TOLERANCE:g} x max|aggregate| + 1 ulp",
        "round_s_median": round(statistics.median(times), 2) if times else None,
        "round_s_max": round(max(times), 2) if times else None,
        "honest_rejoins": sum(r["rejoined"] for r in rounds),
        "honest_errors": dict(honest_errors),
        "warmup_s": warmup,
        "rss_mb_after_warmup": warm,
        "rss_mb_end": last,
        "rss_mb_max_after_warmup": max(after, default=None),
        "rss_growth_pct": round(growth, 1),
        "rss_flat": bool(growth < 10),
    }


def main() -> int:
    """Parse the options, run the soak, print the summary; exit status 1 when a goal was missed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--honest", type=int, default=180)
    parser.add_argument("--misbehaving", type=int, default=20)
    parser.add_argument("--honest-workers", type=int, default=1, help="processes for the honest clients")
    parser.add_argument("--deadline", type=float, default=2.0, help="the task's round_deadline_s")
    parser.add_argument("--hidden", type=int, default=32, help="the MLP's hidden width")
    parser.add_argument("--server-log", type=Path, help="keep the server's log here")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # server and workers inherit it: a socket per client
    with tempfile.TemporaryDirectory() as data:
        log_path = Path(data) / "server.log"
        try:
            summary = soak(args, log_path, Path(data) / "server")
        finally:
            if args.server_log:
                shutil.copyfile(log_path, args.server_log)
    print(json.dumps(summary), flush=True)
    return 0 if all(summary["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
