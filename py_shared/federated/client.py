"""The federated client: joins a task, trains between rounds, sends its update, loads the new global model.

It plugs into the Trainer as its round_end hook, and speaks the protocol of py_shared.protocol.messages over
any QueuedTransport. A dropped connection is retried with exponential backoff; an update the server did not
acknowledge before the drop is sent again if its round is still open. The update is the change since the
round's global model, clipped and noised on the device when the task asks for client-side DP.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from tinygrad import Tensor

from py_shared.models.base import Model
from py_shared.privacy.accountant import RdpAccountant
from py_shared.privacy.gaussian import privatize
from py_shared.protocol.messages import (
    Error,
    GlobalModel,
    Join,
    Leave,
    Message,
    ProtocolError,
    RoundInfo,
    Update,
    Welcome,
    decode_message,
    encode_message,
)
from py_shared.protocol.transport import Connect, ConnectionClosed, QueuedTransport, retry_with_backoff
from py_shared.task import TaskDefinition
from py_shared.training.trainer import TrainingCancelled
from py_shared.weights import bytes_to_vector, get_vector, set_vector, vector_size, vector_to_bytes

log = logging.getLogger("pydisco.federated")


class Refused(Exception):
    """The server refused this client for good (unknown task, wrong token, ...): retrying cannot help."""


@dataclass(frozen=True)
class Status:
    """What the page or the progress bar shows about the collaboration."""

    state: str  # connecting, waiting, training, aggregating, reconnecting, left
    round: int = 0
    participants: int = 0
    min_participants: int = 0
    epsilon: float | None = None  # privacy spent so far, with client-side DP
    detail: str = ""
    secure: str = ""  # with secure aggregation: the round's participants and threshold (the phase is in detail)
    fingerprint: str = ""  # decentralized: the model's digest after the last round, the same on every peer


StatusCallback = Callable[[Status], None]


class FederatedClient:
    """One participant of a federated task; `round_end` is the Trainer's hook."""

    def __init__(
        self,
        task: TaskDefinition,
        model: Model,
        samples: int,
        connect: Connect,
        *,
        name: str = "",
        token: str = "",
        on_status: StatusCallback | None = None,
        on_new_global: Callable[[], None] | None = None,
        max_backoff_s: float = 10.0,
        max_attempts: int = 30,
    ) -> None:
        self.task, self.model, self.samples, self.connect = task, model, samples, connect
        self.name, self.token = name, token
        self.on_status, self.on_new_global = on_status, on_new_global
        self.max_backoff_s, self.max_attempts = max_backoff_s, max_attempts
        self.transport: QueuedTransport | None = None
        self.round = 0
        self.global_vector: Tensor | None = None
        self.pending: tuple[int, bytes] | None = None  # an update sent but not yet answered by a global model
        self.trained_from = 0  # the round whose global model local training started from
        privacy = task.privacy
        self.local_dp = not privacy.central and not privacy.distributed and privacy.noise_multiplier > 0
        self.accountant = RdpAccountant(privacy.delta) if self.local_dp or privacy.distributed else None
        self.status = Status("connecting")
        self.cancelled = False
        if task.secure_aggregation and type(self) is FederatedClient:
            raise ValueError(
                "a secure-aggregation task needs SecureFederatedClient (py_shared/federated/secure_client)"
            )

    def _report(self, **changes: object) -> None:
        self.status = replace(self.status, **changes)  # type: ignore[arg-type]
        if self.on_status:
            self.on_status(self.status)

    async def start(self) -> None:
        """Connect, join, load the current global model, and wait until enough participants are there."""
        await self._connect_with_backoff()
        await self._next_local_round()

    async def cancel(self) -> None:
        """Stop waiting (for participants, for the round, for the server): the waiting call raises
        TrainingCancelled. Safe to call from a UI handler while the client is blocked."""
        self.cancelled = True
        if self.transport is not None:
            await self.transport.close()

    def _lost(self, error: ConnectionClosed) -> None:
        if self.cancelled:
            raise TrainingCancelled("left the federation") from None
        self._report(state="reconnecting", detail=str(error))

    async def leave(self) -> None:
        """Tell the server this client is done, and close the connection."""
        if self.transport is not None:
            try:
                await self.transport.send(encode_message(Leave()))
            except ConnectionClosed:
                pass
            await self.transport.close()
        self._report(state="left")

    async def round_end(self, local_round: int) -> None:
        """Send this round's update and continue from the next global model (the Trainer's round hook)."""
        self._drain()
        if self.round != self.trained_from:
            # the round closed without us while we trained: the new global model is loaded, our work is stale
            await self._next_local_round()
            return
        await self._exchange(self.make_update())
        await self._next_local_round()

    async def _exchange(self, update: Tensor) -> None:
        """Send `update` for the current round and wait for the round's global model (resending after a drop)."""
        self.pending = (self.round, vector_to_bytes(update))
        if self.accountant is not None:
            self.accountant.step(self.task.privacy.noise_multiplier)
            self._report(epsilon=self.accountant.epsilon)
        self._report(state="aggregating", detail=f"update for round {self.round} sent")
        while self.pending is not None:
            try:
                round_, vector = self.pending
                await self._transport().send(encode_message(Update(round=round_, samples=self.samples), vector))
                while self.pending is not None:
                    self._handle(await self._transport().receive())
            except ConnectionClosed as e:
                self._lost(e)
                await self._connect_with_backoff()  # resends below if the server still waits for this round

    def make_update(self) -> Tensor:
        """This round's update: the change since the round's global model, privatised if the task says so."""
        update = get_vector(self.model) - self._global()
        privacy = self.task.privacy
        if not privacy.central and (privacy.clip_norm > 0 or privacy.noise_multiplier > 0):
            # distributed DP: only the clip here; the noise is added once the number of participants is known
            noise = 0.0 if privacy.distributed else privacy.noise_multiplier
            update = privatize(update, privacy.clip_norm, noise)
        return update

    def _transport(self) -> QueuedTransport:
        if self.transport is None:
            raise RuntimeError("not connected: call start() first")
        return self.transport

    def _global(self) -> Tensor:
        if self.global_vector is None:
            raise RuntimeError("no global model yet: call start() first")
        return self.global_vector

    def _drain(self) -> None:
        """Handle what arrived during local training; a drop is dealt with when the update is sent."""
        try:
            while (frame := self._transport().poll()) is not None:
                self._handle(frame)
        except ConnectionClosed:
            pass

    async def _next_local_round(self) -> None:
        while self.status.participants < self.status.min_participants:
            self._report(state="waiting", detail="waiting for more participants")
            try:
                self._handle(await self._transport().receive())
            except ConnectionClosed as e:
                self._lost(e)
                await self._connect_with_backoff()
        self.trained_from = self.round
        self._report(state="training", detail="")

    def _handle(self, frame: bytes) -> tuple[Message, bytes]:
        """Act on one frame from the server; returns the message and its payload."""
        try:
            message, payload = decode_message(frame)
        except ProtocolError as e:
            raise Refused(f"the server sent something unreadable: {e}") from None
        if isinstance(message, GlobalModel):
            self._load_global(message.round, payload)
        elif isinstance(message, Welcome) and message.vector_size != vector_size(self.model):
            raise Refused(
                f"the server's model for this task has {message.vector_size} values, this one "
                f"{vector_size(self.model)}: the task definitions differ"
            )
        elif isinstance(message, Welcome | RoundInfo):
            self._report(participants=message.participants, min_participants=message.min_participants)
        elif isinstance(message, Error):
            if message.fatal:
                raise Refused(f"the server refused this client: {message.message}")
            log.warning("server: %s (%s)", message.message, message.code)
            self._report(detail=message.message)
        return message, payload

    def _load_global(self, round_: int, payload: bytes) -> None:
        if self.global_vector is not None and round_ <= self.round:
            return  # the model we already have (a reconnect resends it)
        vector = bytes_to_vector(payload, self.model.parameters()[0].device).realize()
        set_vector(self.model, vector)
        self.global_vector, self.round = vector, round_
        if self.pending is not None and self.pending[0] < round_:
            self.pending = None  # that round is closed, with or without our update
        self._report(round=round_)
        if self.on_new_global:
            self.on_new_global()

    async def _connect_with_backoff(self) -> None:
        def stop_if_cancelled() -> None:
            if self.cancelled:
                raise TrainingCancelled("left the federation")

        def retrying(why: str) -> None:
            self._report(state="reconnecting", detail=why)

        await retry_with_backoff(self._join, retrying, self.max_attempts, self.max_backoff_s, stop_if_cancelled)

    async def _join(self) -> None:
        """Open a connection, join, and read up to the global model that follows the welcome."""
        if self.transport is not None:
            await self.transport.close()
        self.transport = await self.connect()
        join = Join(task_id=self.task.id, samples=self.samples, client_name=self.name, token=self.token)
        await self.transport.send(encode_message(join))
        while self._handle(await self.transport.receive())[0].kind != "global_model":
            pass
