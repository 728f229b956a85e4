"""Joining a federated task with one's data, the same on every platform.

The client announces how many training examples it holds; a secure tabular task's participants then agree on
their features' statistics (a secure sum of moments) before anyone encodes their data, so every participant
standardises its columns alike instead of with its own means and deviations.
"""

from __future__ import annotations

from collections.abc import Callable

from py_shared.data.examples import split_indices
from py_shared.data.sources import CsvSource, DataSource
from py_shared.data.tabular import read_csv
from py_shared.federated.client import FederatedClient
from py_shared.federated.secure_client import SecureFederatedClient
from py_shared.secure.statistics import Moments, local_moments
from py_shared.task import TabularData, TaskDefinition
from py_shared.training.pipeline import PreparedData, prepare_data


def needs_shared_statistics(task: TaskDefinition) -> bool:
    """Whether the participants must agree on feature statistics first: secure, tabular, standardised."""
    spec = task.data
    return task.secure_aggregation and isinstance(spec, TabularData) and spec.normalize and bool(spec.numeric_columns)


def training_moments(task: TaskDefinition, source: CsvSource) -> tuple[list[Moments], int]:
    """The numeric columns' moments over this participant's training split, and that split's size."""
    assert isinstance(task.data, TabularData)
    rows = read_csv(source.text, task.data, source.name)
    train, _ = split_indices(len(rows.labels), task.training.validation_fraction, task.training.seed)
    return local_moments(rows, train, task.data), len(train)


async def join_with_data(
    task: TaskDefinition, source: DataSource | PreparedData, make_client: Callable[[int], FederatedClient]
) -> tuple[FederatedClient, PreparedData]:
    """Build the client (`make_client(samples)`), join, and prepare the data as the federation agreed (data
    prepared beforehand joins as it is, where no statistics need agreeing)."""
    if needs_shared_statistics(task):
        if not isinstance(source, CsvSource):
            raise ValueError("a secure tabular task agrees on statistics first: give the CSV, not prepared data")
        moments, samples = training_moments(task, source)
        client = make_client(samples)
        if not isinstance(client, SecureFederatedClient):
            raise TypeError("a secure task needs a SecureFederatedClient")
        await client.start()
        return client, prepare_data(task, source, await client.agree_statistics(moments))
    data = source if isinstance(source, PreparedData) else prepare_data(task, source)
    client = make_client(data.train.count)
    await client.start()
    return client, data
