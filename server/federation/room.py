"""One federated task's live state: participants, the current round, the global model, the round's updates.

A round closes when at least min_participants updates arrived and either every connected participant has sent
one or the task's round deadline (counted from the round's first update) has passed. Then the aggregate is
applied, the new global model is stored and sent to everyone. Nothing non-finite is: an update with a value large
enough to overflow a sum is refused (round_sum.checked_update), and an aggregate that would still make the model
non-finite is dropped, the round closing with the model unchanged. Sending never waits: each participant's frames
go to its connection's bounded outbox, and the global model is encoded once a round for all of them. An update
for another round is refused and its sender gets the current model; a participant that leaves is simply no
longer waited for. A secure-aggregation task's rounds are run by secure_round.SecureRounds instead, which hands
its aggregate to close_round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from py_shared.protocol.messages import (
    Error,
    ErrorCode,
    GlobalModel,
    Message,
    ProtocolError,
    RoundInfo,
    Update,
    Welcome,
    encode_message,
)
from py_shared.protocol.secure_messages import AdvertiseKeys, MaskedInput, ShareKeys, UnmaskShares
from py_shared.safetensors_file import flat_to_safetensors, safetensors_to_flat
from py_shared.secure.records import SEALED_BYTES
from py_shared.task import TaskDefinition
from py_shared.weights import Slot
from server.federation.round_sum import RoundSum, Vector
from server.federation.secure_round import SecureRounds
from server.store import Store

log = logging.getLogger("pydisco.federation")
DEVICE = "CPU"
Send = Callable[[bytes], None]


@dataclass
class Participant:
    """A connected client, as the room sees it; `send` queues a frame for it and never waits, `news` queues the
    round's state, replacing state not yet sent."""

    id: str
    name: str  # what the client calls itself, for the log
    send: Send
    news: Send


class Room(Protocol):
    """What the endpoint needs of a task's room, federated (TaskRoom) or decentralized (PeerRoom)."""

    task: TaskDefinition

    @property
    def max_frame_bytes(self) -> int:
        """The largest frame a joined client may send."""

    async def join(self, participant: Participant) -> None:
        """Admit a participant."""

    async def handle(self, participant_id: str, message: Message, payload: bytes) -> None:
        """A joined participant's message (other than join and leave); raises ProtocolError to refuse it."""

    async def leave(self, participant_id: str) -> None:
        """Forget a participant."""


CLIENT_SECURE = (AdvertiseKeys, ShareKeys, MaskedInput, UnmaskShares)


class TaskRoom:
    """The federated state of one task; every method runs on the server's event loop."""

    def __init__(self, task: TaskDefinition, store: Store, slots: list[Slot], initial: bytes) -> None:
        """`slots` and `initial`: the model's layout and seeded initial weights (initial_model.initial_model)."""
        self.task, self.store, self.slots = task, store, slots
        self.size = sum(s.size for s in slots)
        self.round, self.global_vector = 0, np.frombuffer(initial, dtype=np.float32)
        if (stored := store.load_model(task.id)) is not None:
            vector = np.frombuffer(safetensors_to_flat(slots, stored[1])[0], dtype=np.float32)
            self.round = stored[0]
            if np.isfinite(vector).all():
                self.global_vector = vector
                log.info("task %s: resumed at round %d from the stored global model", task.id, self.round)
            else:  # written before models were checked: training on from it would spread the damage
                log.error("task %s: the stored model is not finite; round %d restarts from the initial weights",
                          task.id, self.round)  # fmt: skip
        self.model_frame = self._encode_model()
        self.participants: dict[str, Participant] = {}
        self.sent: set[str] = set()
        self.previous: Vector | None = None
        self.sum = RoundSum(task, self.size)
        self.deadline: asyncio.TimerHandle | None = None
        self.deadline_passed = False
        self.round_started = time.monotonic()
        self.secure = SecureRounds(self, DEVICE) if task.secure_aggregation else None

    @property
    def max_frame_bytes(self) -> int:
        """The largest frame this task's clients may send: one model vector (or, in a secure round, one
        encrypted share record per possible neighbour, if that is more) and a header."""
        shares = SEALED_BYTES * self.task.secure.max_participants if self.secure else 0
        return max(4 * self.size, shares) + 64 * 1024

    def _encode_model(self) -> bytes:
        return encode_message(GlobalModel(round=self.round), self.global_vector.tobytes())

    def info(self, updates: int | None = None) -> RoundInfo:
        """The round's state, as broadcast to participants (`updates`: how many arrived, if not plain updates)."""
        n = len(self.participants)
        minimum = self.task.min_participants
        received = len(self.sent) if updates is None else updates
        return RoundInfo(
            round=self.round, participants=n, min_participants=minimum, updates=received, waiting=n < minimum
        )

    def broadcast(self, frame: bytes) -> None:
        """Queue `frame` for every participant."""
        for p in list(self.participants.values()):
            p.send(frame)

    def broadcast_news(self, updates: int | None = None) -> None:
        """Queue the round's state (`info`) for every participant, superseding what they have not received yet."""
        frame = encode_message(self.info(updates))
        for p in list(self.participants.values()):
            p.news(frame)

    def tell(self, participant_id: str, frame: bytes) -> None:
        """Queue `frame` for one participant, if it is still connected."""
        if (p := self.participants.get(participant_id)) is not None:
            p.send(frame)

    async def join(self, participant: Participant) -> None:
        """Admit a participant: welcome, current global model, and news for everyone."""
        self.participants[participant.id] = participant
        n = len(self.participants)
        log.info("task %s: %s (%s) joined (%d participants)", self.task.id, participant.id, participant.name, n)
        welcome = Welcome(
            client_id=participant.id,
            round=self.round,
            participants=n,
            min_participants=self.task.min_participants,
            vector_size=self.size,
        )
        participant.send(encode_message(welcome))
        participant.send(self.model_frame)
        if self.secure is not None and self.secure.statistics is not None:
            participant.send(encode_message(self.secure.statistics))
        self.broadcast_news()

    async def leave(self, participant_id: str) -> None:
        """Forget a participant (it left or its connection dropped); the round no longer waits for it."""
        if self.participants.pop(participant_id, None) is None:
            return
        log.info("task %s: %s left (%d participants)", self.task.id, participant_id, len(self.participants))
        if self.secure is not None:
            await self.secure.participant_left(participant_id)
            self.broadcast_news()
        elif not self._maybe_close():
            self.broadcast_news()

    async def handle(self, participant_id: str, message: Message, payload: bytes) -> None:
        """A joined client's update or secure-aggregation message; anything else is refused."""
        if isinstance(message, Update):
            await self.update(participant_id, message, payload)
        elif isinstance(message, CLIENT_SECURE) and self.secure is not None:
            await self.secure.handle(participant_id, message, payload)
        else:
            raise ProtocolError("unexpected", f"a client does not send {message.kind!r} messages here")

    async def update(self, participant_id: str, message: Update, payload: bytes) -> None:
        """Take a participant's update, or refuse it with a reason; closes the round when it is complete."""
        if self.secure is not None:
            raise ProtocolError("unexpected", "this task uses secure aggregation: advertise keys, not a plain update")
        p = self.participants[participant_id]
        if message.round != self.round:
            self._refuse(p, "stale_round", f"round {message.round} is over; the current round is {self.round}")
            p.send(self.model_frame)
            return
        if participant_id in self.sent:
            self._refuse(p, "duplicate_update", f"an update for round {self.round} was already received")
            return
        try:
            self.sum.add(payload, message.samples)
        except ProtocolError as e:
            self._refuse(p, e.code, str(e))
            return
        self.sent.add(participant_id)
        if len(self.sent) == 1 and self.task.federation.round_deadline_s > 0:
            loop = asyncio.get_running_loop()
            self.deadline = loop.call_later(self.task.federation.round_deadline_s, self._deadline_hit, self.round)
        if not self._maybe_close():
            # only the sender hears of each update: telling everyone would cost N^2 messages a round
            p.news(encode_message(self.info()))

    def _refuse(self, p: Participant, code: ErrorCode, text: str) -> None:
        log.warning("task %s: refused from %s: %s", self.task.id, p.id, text)
        p.send(encode_message(Error(code=code, message=text)))

    def _deadline_hit(self, round_: int) -> None:
        if round_ == self.round:
            self.deadline_passed = True
            self._maybe_close()

    def _maybe_close(self) -> bool:
        enough = len(self.sent) >= self.task.min_participants
        everyone = all(pid in self.sent for pid in self.participants)
        if not (enough and (everyone or self.deadline_passed)):
            return False
        self.close_round(self.sum.result(), len(self.sent))
        return True

    def close_round(self, aggregate: Vector, count: int) -> None:
        """Apply the round's aggregate of `count` updates, store the new global model and send it to everyone."""
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught just below
            candidate = self.global_vector + aggregate
        if np.isfinite(candidate).all():
            self.global_vector, self.previous = candidate, aggregate
        else:  # accepted updates cannot cause this, a rule's own arithmetic might (0/0): keep what was good
            log.error("task %s: round %d's aggregate is not finite; the global model stays", self.task.id, self.round)
        self.round += 1
        self.model_frame = self._encode_model()
        self.store.save_model(self.task.id, self.round, self.safetensors())
        seconds = time.monotonic() - self.round_started
        log.info("task %s: round %d closed with %d updates in %.1f s", self.task.id, self.round - 1, count, seconds)
        self.sent = set()
        self.sum = RoundSum(self.task, self.size, self.previous)
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline, self.deadline_passed, self.round_started = None, False, time.monotonic()
        self.broadcast(self.model_frame)
        self.broadcast_news()

    def safetensors(self) -> bytes:
        """The global model as a safetensors file, named like the model's parameters."""
        metadata = {"task": self.task.id, "round": str(self.round)}
        return flat_to_safetensors(self.slots, self.global_vector.tobytes(), metadata)
