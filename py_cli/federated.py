"""A CPython participant of a federated task: the shared client and trainer over a `websockets` connection."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Protocol

from py_cli.websocket_transport import connector, federated_url
from py_cpython.crypto import CPythonCrypto
from py_shared.data.sources import DataSource
from py_shared.federated.client import FederatedClient, StatusCallback
from py_shared.federated.join import join_with_data
from py_shared.federated.secure_client import SecureFederatedClient
from py_shared.models import build_model
from py_shared.models.base import Model
from py_shared.task import TaskDefinition, task_from_json, task_to_json
from py_shared.training.pipeline import PreparedData
from py_shared.training.trainer import EpochCallback, EpochMetrics, ProgressCallback, Trainer

ClientFactory = Callable[..., FederatedClient]


async def train_federated(
    task: TaskDefinition,
    source: DataSource | PreparedData,
    server: str,
    *,
    name: str = "",
    token: str = "",
    on_status: StatusCallback | None = None,
    on_data: Callable[[PreparedData], None] | None = None,
    on_progress: ProgressCallback | None = None,
    on_epoch: EpochCallback | None = None,
    client_class: ClientFactory | None = None,
) -> tuple[Trainer, list[EpochMetrics]]:
    """Join `task` on `server` with the data in `source` (raw, or prepared), train through its rounds, leave;
    returns the trainer (its model is the last global model) and the epoch history. A secure-aggregation task
    gets a SecureFederatedClient (or `client_class`, then a subclass of it) with the CPython crypto backend."""
    model = build_model(task)
    connect = connector(federated_url(server, task.id))
    options: dict[str, object] = {"name": name, "token": token, "on_status": on_status}
    if task.secure_aggregation:
        options["crypto"] = CPythonCrypto()
    factory: ClientFactory = client_class or (SecureFederatedClient if task.secure_aggregation else FederatedClient)
    client, data = await join_with_data(task, source, lambda samples: factory(task, model, samples, connect, **options))
    if on_data is not None:
        on_data(data)
    return await train_in_rounds(task, model, data, client, on_progress, on_epoch)


class RoundParticipant(Protocol):
    """A federated client or a decentralized peer, as the training loop sees it."""

    on_new_global: Callable[[], None] | None

    async def round_end(self, local_round: int) -> None:
        """Take part in the round that local training just finished."""

    async def leave(self) -> None:
        """Leave the task."""


async def train_in_rounds(
    task: TaskDefinition,
    model: Model,
    data: PreparedData,
    participant: RoundParticipant,
    on_progress: ProgressCallback | None,
    on_epoch: EpochCallback | None,
) -> tuple[Trainer, list[EpochMetrics]]:
    """Train `model` on `data`, handing every round's end to `participant`, and leave when done (or failed)."""
    trainer = Trainer(task, model, data.train, data.validation, on_progress, on_epoch, round_end=participant.round_end)
    participant.on_new_global = trainer.reset_anchor
    try:
        history = await trainer.fit()
    finally:
        await participant.leave()
    return trainer, history


def fetch_task(server: str, task_id: str) -> TaskDefinition:
    """The task's definition as the server has it."""
    url = f"{server.rstrip('/')}/api/tasks/{task_id}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return task_from_json(json.load(response))
    except urllib.error.HTTPError as e:
        raise ValueError(f"{url}: {json.loads(e.read() or b'{}').get('error', e.reason)}") from None
    except urllib.error.URLError as e:
        raise ValueError(f"cannot reach {server}: {e.reason}") from None


def create_task(server: str, task: TaskDefinition, admin_token: str = "", join_token: str = "") -> None:
    """Create `task` on the server (POST /api/tasks)."""
    body = json.dumps({"task": task_to_json(task), "join_token": join_token}).encode()
    request = urllib.request.Request(f"{server.rstrip('/')}/api/tasks", body, method="POST")
    request.add_header("content-type", "application/json")
    if admin_token:
        request.add_header("authorization", f"Bearer {admin_token}")
    try:
        urllib.request.urlopen(request, timeout=30).close()
    except urllib.error.HTTPError as e:
        raise ValueError(
            f"the server refused the task: {json.loads(e.read() or b'{}').get('error', e.reason)}"
        ) from None
