"""A CPython peer of a decentralized task: the shared peer logic and trainer, signaling over `websockets`, models
over aiortc data channels."""

from __future__ import annotations

from collections.abc import Callable

from py_cli.federated import train_in_rounds
from py_cli.rtc_link import open_link
from py_cli.websocket_transport import connector, task_url
from py_cpython.crypto import CPythonCrypto
from py_shared.data.sources import DataSource
from py_shared.decentralized.peer import DecentralizedPeer
from py_shared.federated.client import StatusCallback
from py_shared.models import build_model
from py_shared.task import TaskDefinition
from py_shared.training.pipeline import PreparedData, prepare_data
from py_shared.training.trainer import EpochCallback, EpochMetrics, ProgressCallback, Trainer


async def train_decentralized(
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
) -> tuple[Trainer, list[EpochMetrics]]:
    """Join `task`'s peers through `server` with the data in `source`, train through its rounds exchanging models
    with the other peers, leave; returns the trainer (its model is the last round's average) and the history."""
    data = source if isinstance(source, PreparedData) else prepare_data(task, source)
    if on_data is not None:
        on_data(data)
    model = build_model(task)
    connect = connector(task_url(server, task.id, "decentralized"))
    peer = DecentralizedPeer(task, model, data.train.count, connect, open_link, name=name, token=token,
                             on_status=on_status, crypto=CPythonCrypto())  # fmt: skip
    await peer.start()
    return await train_in_rounds(task, model, data, peer, on_progress, on_epoch)
