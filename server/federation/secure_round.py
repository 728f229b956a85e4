"""A federated task's rounds under secure aggregation: the server relays keys and shares and learns only the sum.

Each round is one or more attempts of py_shared.secure.server.SecAggServer. An attempt starts once every
connected participant has advertised its keys (or, with a round deadline, that long after the first one, with
at least min_participants); every later phase ends when everyone it waits for has answered or after the task's
phase timeout, and whoever is missing then has dropped. An attempt that cannot complete (too few left, shares
that cannot be rebuilt) is aborted and the round redone at once with fresh keys; nobody is waited for beyond
a timeout. The unmasked sum, decoded and divided by the survivors' weights, is the round's aggregate. Before
the first round of a tabular task, the same kind of sum agrees on the features' statistics (secure/statistics.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from typing import TYPE_CHECKING

import numpy as np
from tinygrad import Tensor

from py_cpython.crypto import CPythonCrypto
from py_shared.protocol.messages import ProtocolError, encode_message
from py_shared.protocol.secure_messages import (
    AdvertiseKeys,
    MaskedInput,
    Purpose,
    SecureAbort,
    SecureMessage,
    SecureResult,
    SharedStatistics,
    ShareKeys,
    UnmaskShares,
)
from py_shared.secure import fixed_point, statistics
from py_shared.secure.graph import suggested_degree
from py_shared.secure.precision import fixed_point_for
from py_shared.secure.server import AttemptFailed, SecAggServer
from py_shared.task import TabularData
from py_shared.typed_json import from_json, to_json
from py_shared.weights import vector_to_bytes

if TYPE_CHECKING:
    from server.federation.room import TaskRoom

log = logging.getLogger("pydisco.federation")
CRYPTO = CPythonCrypto()
_order = random.SystemRandom()  # the mask graph and evaluation points: not guessable by participants


class SecureRounds:
    """The secure-aggregation state of one task's room."""

    def __init__(self, room: TaskRoom, device: str) -> None:
        self.room, self.device = room, device
        self.settings = room.task.secure
        self.codec = fixed_point_for(self.settings.clip_value, self.settings.max_participants)
        self.statistics: SharedStatistics | None = None
        spec = room.task.data
        needed = isinstance(spec, TabularData) and spec.normalize and bool(spec.numeric_columns)
        if needed and (stored := room.store.load_statistics(room.task.id)) is not None:
            self.statistics = from_json(SharedStatistics, stored)
        # a tabular task first agrees on its features' statistics, then sums model updates
        self.purpose: Purpose = "statistics" if needed and self.statistics is None else "update"
        self.attempt = 0
        self.round = -1
        self.sm = self._new_attempt()
        self.timer: asyncio.TimerHandle | None = None
        self.round_deadline: asyncio.TimerHandle | None = None
        self.lock = asyncio.Lock()
        self._pending: set[asyncio.Future[None]] = set()

    def _new_attempt(self) -> SecAggServer:
        if self.round != self.room.round:
            self.round, self.attempt = self.room.round, 0
        else:
            self.attempt += 1
        spec = self.room.task.data
        size = self.room.size
        if self.purpose == "statistics" and isinstance(spec, TabularData):
            size = statistics.words_for(len(spec.numeric_columns))
        task_id, threshold = self.room.task.id, self.settings.threshold
        return SecAggServer(CRYPTO, task_id, self.round, self.attempt, size, threshold, self.device, self.purpose)

    async def handle(self, pid: str, message: SecureMessage, payload: bytes) -> None:
        """A participant's secure-round message; ProtocolError goes back to the sender, who is then left out."""
        async with self.lock:
            round_ = getattr(message, "round", self.room.round)
            if round_ != self.room.round:
                raise ProtocolError("stale_round", f"round {round_} is over; the current round is {self.room.round}")
            if not isinstance(message, AdvertiseKeys) and getattr(message, "attempt", -1) != self.attempt:
                raise ProtocolError("stale_round", f"attempt {getattr(message, 'attempt', '?')} of this round is over")
            try:
                if isinstance(message, AdvertiseKeys):
                    await self._advertise(pid, message, payload)
                elif isinstance(message, ShareKeys):
                    self.sm.share_keys(pid, payload)
                elif isinstance(message, MaskedInput):
                    self.sm.masked_input(pid, payload)
                elif isinstance(message, UnmaskShares):
                    self.sm.unmask_shares(pid, payload)
                else:
                    raise ProtocolError("unexpected", f"a client does not send {message.kind!r} messages")
            except ProtocolError as e:
                if pid in self.sm.members and e.code != "unexpected":
                    self.sm.excluded.add(pid)
                    log.warning("task %s: %s left out of the secure round: %s", self.room.task.id, pid, e)
                await self._advance_if_ready()
                raise
            await self._advance_if_ready()

    async def _advertise(self, pid: str, message: AdvertiseKeys, payload: bytes) -> None:
        if message.purpose == "statistics" and self.statistics is not None:
            self.room.tell(pid, encode_message(self.statistics))  # agreed already: it joined late
            return
        if message.purpose != self.purpose:
            raise ProtocolError(
                "unexpected", f"this task's secure sum is for {self.purpose} now, not {message.purpose}"
            )
        if self.sm.phase != "advertise":
            raise ProtocolError("round_in_progress", "a secure round is under way without you; you will get its result")
        if pid not in self.sm.advertised and len(self.sm.advertised) >= self.settings.max_participants:
            raise ProtocolError(
                "round_in_progress", f"this round already has {self.settings.max_participants} participants"
            )
        self.sm.advertise(pid, message.samples, payload)
        deadline = self.room.task.federation.round_deadline_s
        if len(self.sm.advertised) == 1 and deadline > 0:
            self.round_deadline = asyncio.get_running_loop().call_later(deadline, self._spawn, self.sm, "advertise")
        if (p := self.room.participants.get(pid)) is not None:
            p.news(encode_message(self.room.info(updates=len(self.sm.advertised))))

    def _spawn(self, sm: SecAggServer, phase: str) -> None:
        """A timer fired: end `phase` of attempt `sm` if it is still the current one."""

        async def run() -> None:
            async with self.lock:
                if sm is self.sm and sm.phase == phase:
                    await self._advance(timed_out=True)

        task = asyncio.ensure_future(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def participant_left(self, pid: str) -> None:
        """A participant is gone: the current phase no longer waits for it."""
        async with self.lock:
            if self.sm.phase == "advertise":
                self.sm.advertised.pop(pid, None)
            else:
                self.sm.excluded.add(pid)
            await self._advance_if_ready()

    async def _advance_if_ready(self) -> None:
        await self._advance(timed_out=False)

    async def _advance(self, timed_out: bool) -> None:
        """Move to the next phase when nobody is awaited (or the phase timed out); abort the attempt on failure."""
        try:
            while self._ready(timed_out):
                timed_out = False
                await self._next_phase()
        except AttemptFailed as e:
            await self._abort(str(e))

    def _ready(self, timed_out: bool) -> bool:
        sm = self.sm
        if sm.phase == "advertise":
            connected = set(self.room.participants)
            everyone = connected <= set(sm.advertised) or len(sm.advertised) >= self.settings.max_participants
            enough = len(sm.advertised) >= max(2, self.room.task.min_participants)
            return enough and (everyone or timed_out)
        return sm.phase != "done" and (timed_out or not sm.waiting_for())

    async def _next_phase(self) -> None:
        sm = self.sm
        if self.timer is not None:
            self.timer.cancel()
        if sm.phase == "advertise":
            if self.round_deadline is not None:
                self.round_deadline.cancel()
            order = [pid for pid in sm.advertised if pid in self.room.participants]
            _order.shuffle(order)
            graph = self.settings.graph
            degree = (self.settings.neighbours or suggested_degree(len(order))) if graph == "sparse" else 0
            for pid, (message, payload) in sm.start(order, degree).items():
                self.room.tell(pid, encode_message(message, payload))
            log.info(
                "task %s: secure round %d (attempt %d): %d participants, threshold %d",
                self.room.task.id, self.round, self.attempt, len(order), sm.threshold,
            )  # fmt: skip
        elif sm.phase == "share":
            for pid, (forwarded, payload) in sm.forward().items():
                self.room.tell(pid, encode_message(forwarded, payload))
        elif sm.phase == "mask":
            for pid, request in sm.request_unmask().items():
                self.room.tell(pid, encode_message(request))
        elif sm.phase == "unmask":
            await self._finish()
            return
        self.timer = asyncio.get_running_loop().call_later(self.settings.phase_timeout_s, self._spawn, sm, sm.phase)

    async def _finish(self) -> None:
        sm = self.sm
        total = await sm.finish()
        if self.purpose == "statistics":
            await self._share_statistics(total, len(sm.survivors))
            return
        distributed = self.room.task.privacy.distributed
        base = max(m.samples for m in sm.members.values())
        weight = float(len(sm.survivors)) if distributed else sum(m.samples / base for m in sm.survivors)
        aggregate = np.frombuffer(vector_to_bytes(fixed_point.decode(total, self.codec) / weight), dtype=np.float32)
        z = self.room.task.privacy.noise_multiplier
        noise = z * math.sqrt(len(sm.survivors) / len(sm.members)) if distributed else 0.0
        result = SecureResult(
            round=self.round, participants=len(sm.members), survivors=len(sm.survivors), noise_multiplier=noise
        )
        log.info(
            "task %s: secure round %d: the sum of %d of %d inputs unmasked",
            self.room.task.id, self.round, len(sm.survivors), len(sm.members),
        )  # fmt: skip
        self.room.broadcast(encode_message(result))
        self.room.close_round(aggregate, len(sm.survivors))
        self.sm = self._new_attempt()
        await self._advance_if_ready()  # participants may already be waiting for the next round

    async def _share_statistics(self, total: Tensor, survivors: int) -> None:
        stats = statistics.statistics_from(statistics.decode_moments(total.tolist()))  # type: ignore[arg-type]
        self.statistics = SharedStatistics(mean=stats.mean, std=stats.std, participants=survivors)
        self.room.store.save_statistics(self.room.task.id, to_json(self.statistics))
        log.info("task %s: %d participants agreed on their features' statistics", self.room.task.id, survivors)
        self.purpose = "update"
        self.sm = self._new_attempt()
        self.room.broadcast(encode_message(self.statistics))

    async def _abort(self, reason: str) -> None:
        log.warning(
            "task %s: secure round %d attempt %d redone: %s", self.room.task.id, self.round, self.attempt, reason
        )
        for timer in (self.timer, self.round_deadline):
            if timer is not None:
                timer.cancel()
        abort = SecureAbort(round=self.round, attempt=self.attempt, reason=reason)
        self.sm = self._new_attempt()
        self.room.broadcast(encode_message(abort))
