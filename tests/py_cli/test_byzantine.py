"""Byzantine robustness, end to end: 2 of 8 simulated clients send scaled, sign-flipped updates."""

from __future__ import annotations

import asyncio

from py_cli.simulate import Attack, simulate
from py_shared.data.sources import CsvSource
from py_shared.data.splits import SplitSpec
from py_shared.task import Aggregator
from tests.fixtures import titanic_like_csv, titanic_like_task

ATTACK = Attack(clients=2, factor=-20.0)


def honest_accuracy(aggregator: Aggregator, attack: Attack | None) -> float:
    source = CsvSource("passengers.csv", titanic_like_csv(1600))
    results = asyncio.run(
        simulate(
            titanic_like_task(), source, 8, SplitSpec("iid"), 5, aggregator=aggregator, attack=attack, baseline=False
        )
    )
    return min(r.federated_accuracy for r in results if not r.attacker)


def test_robust_aggregators_hold_where_fedavg_collapses() -> None:
    honest = honest_accuracy("fedavg", None)
    assert honest > 0.75
    assert honest_accuracy("fedavg", ATTACK) < honest - 0.2
    for aggregator in ("median", "centered_clipping"):
        assert honest_accuracy(aggregator, ATTACK) > honest - 0.05, aggregator  # type: ignore[arg-type]
