"""Secure aggregation from the CLI's side: a tabular task's clients agree on their features' statistics through
a secure sum before encoding their data, and train together to the same model."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.server_process import running_server
from py_cli.federated import create_task, train_federated
from py_shared.data.examples import split_indices
from py_shared.data.sources import CsvSource
from py_shared.data.splits import SplitSpec, split_source
from py_shared.data.tabular import NumericStats, numeric_stats, read_csv
from py_shared.federated.secure_client import SecureFederatedClient
from py_shared.secure.statistics import Moments
from py_shared.task import TabularData, TaskDefinition
from py_shared.weights import get_vector
from tests.fixtures import titanic_like_csv, titanic_like_task


def pooled_statistics(task: TaskDefinition, parts: list[CsvSource]) -> NumericStats:
    """The statistics of every client's training split taken together: what agreeing should give."""
    assert isinstance(task.data, TabularData)
    header = parts[0].text.splitlines()[0]
    pooled: list[str] = []
    for part in parts:
        rows = read_csv(part.text, task.data, part.name)
        train, _ = split_indices(len(rows.labels), task.training.validation_fraction, task.training.seed)
        pooled += [part.text.splitlines()[1:][i] for i in train]
    combined = read_csv("\n".join([header, *pooled]) + "\n", task.data, "pooled.csv")
    return numeric_stats(combined, list(range(len(combined.labels))), task.data)


def test_clients_agree_on_pooled_statistics_and_train_to_one_model(tmp_path: Path) -> None:
    base = titanic_like_task(epochs=3)
    task = replace(base, id="secure-titanic", scheme="federated", min_participants=3, secure_aggregation=True)
    source = CsvSource("passengers.csv", titanic_like_csv(600, seed=4))
    parts = split_source(task, source, 3, SplitSpec("quantity", 0.5), seed=1)  # different sizes, different means
    agreed: list[NumericStats] = []

    class Recording(SecureFederatedClient):
        async def agree_statistics(self, moments: list[Moments]) -> NumericStats:
            stats = await super().agree_statistics(moments)
            agreed.append(stats)
            return stats

    async def scenario(url: str) -> list[Any]:
        return await asyncio.gather(*(train_federated(task, p, url, client_class=Recording) for p in parts))

    with running_server(tmp_path, log_path=tmp_path / "server.log") as url:
        create_task(url, task)
        results = asyncio.run(scenario(url))
    expected = pooled_statistics(task, parts)
    assert len(agreed) == 3 and all(s == agreed[0] for s in agreed)
    np.testing.assert_allclose(agreed[0].mean, expected.mean, rtol=1e-6)
    np.testing.assert_allclose(agreed[0].std, expected.std, rtol=1e-6)
    own = [numeric_stats(read_csv(p.text, task.data, p.name), [0], task.data) for p in parts]  # type: ignore[arg-type]
    assert all(o.mean != agreed[0].mean for o in own)  # each client's own differs: agreeing changed something
    models = [get_vector(trainer.model).numpy() for trainer, _ in results]
    np.testing.assert_array_equal(models[0], models[1])
    np.testing.assert_array_equal(models[0], models[2])
    assert results[0][1][-1].val_accuracy > 0.7
    assert "agreed on their features' statistics" in (tmp_path / "server.log").read_text()
