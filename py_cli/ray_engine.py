"""`simulate --engine ray`: each simulated client in its own Ray actor, on a Ray cluster or a local Ray instance.

The actors run the same client code as the local engine (`py_cli.simulate.run_client`, hence
`py_cli.federated.train_federated`) against the same server, so the server cannot tell the engines apart and the
same seed gives the same final model. Ray is optional: it is imported only when this engine is chosen.
On a cluster, every node needs this project installed and must reach the server's URL (pass `--server`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from typing import Any

from py_cli.simulate import ClientJob, ClientOutcome, run_client, scoring_data
from py_shared.data.sources import DataSource

RAY_PIN = "ray==2.60.0"


class SimulatedClient:
    """One simulated federated client in a Ray worker process of its own."""

    def run(self, job: ClientJob, test: DataSource) -> ClientOutcome:
        """Train through every round, then score on `test` (prepared here, on this process's device)."""
        return asyncio.run(run_client(job, scoring_data(job.task, test)))


def require_ray() -> None:
    """Raise ImportError, saying what to install, when Ray is missing."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ImportError(f"--engine ray needs Ray, which is not installed: pip install '{RAY_PIN}'") from None


def _connect(address: str | None, cpus: int | None) -> bool:
    """Connect to the cluster at `address`, or start a local instance; True when this call connected (and the
    caller must disconnect), False when the process was already connected."""
    require_ray()
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        # A bare local instance (about 2 s to start on 2 cores): no dashboard, a web server nobody looks at here
        # (plain `ray` lacks its dependencies anyway; `ray[default]` would start it). Actor output still comes to
        # our stderr (log_to_driver), so the round progress lines show.
        ray.init(num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False, logging_level=logging.WARNING)
    return True


async def run_clients(
    jobs: list[ClientJob], test: DataSource, *, address: str | None = None, cpus: int | None = None
) -> list[ClientOutcome]:
    """Run every job in its own Ray actor, all at once; returns their outcomes in job order. `address`: an
    existing Ray cluster; without it a local Ray instance with `cpus` CPUs (default: all) runs for this call."""
    connected = _connect(address, cpus)
    import ray  # present: _connect required it

    actors: list[Any] = []
    try:
        # One actor per client, not a smaller pool: a round closes only when every client has sent its update, so
        # all clients must run at the same time; a pool would keep the queued clients waiting for a round that
        # waits for them. Each actor asks for an equal share of the cluster's CPUs (Ray counts in 1/10000ths), at
        # most one, so that every actor is placed even with more clients than CPUs.
        share = min(1.0, math.floor(10_000 * ray.cluster_resources().get("CPU", 1) / len(jobs)) / 10_000)
        actor_class = ray.remote(SimulatedClient).options(num_cpus=share)
        actors = [actor_class.remote() for _ in jobs]
        test_ref = ray.put(test)  # serialised once into the object store, not once per actor
        outcomes = await asyncio.gather(*(a.run.remote(job, test_ref) for a, job in zip(actors, jobs, strict=True)))
        return list(outcomes)
    finally:
        # After a failure the other clients would wait for the failed one forever: stop them all.
        for actor in actors:
            ray.kill(actor)
        if connected:
            ray.shutdown()
