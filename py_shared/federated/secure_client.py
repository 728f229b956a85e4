"""The federated client of a secure-aggregation task: its update reaches the server only masked, inside a sum.

Instead of sending its update, the client takes part in the round's secure sum (py_shared/secure/client.py):
it advertises fresh keys, shares them, sends its fixed-point-encoded, weighted and masked update, and answers
the unmasking request; then it loads the new global model like any client. When the server redoes an attempt
it joins the next one with fresh keys; after a dropped connection it reconnects and advertises again if the
round is still open. Client-side DP noise is added before masking; distributed DP adds 1/n of the central
noise's variance here, once the number of participants n is known. A tabular task's participants first agree
on their features' statistics the same way (agree_statistics).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from tinygrad import Tensor, dtypes

from py_shared.data.tabular import NumericStats
from py_shared.federated.client import FederatedClient, Refused
from py_shared.privacy.gaussian import gaussian_noise
from py_shared.protocol.messages import Error, GlobalModel, Message, encode_message
from py_shared.protocol.secure_messages import (
    AdvertiseKeys,
    ForwardedShares,
    KeyList,
    MaskedInput,
    Purpose,
    SecureAbort,
    SecureResult,
    SharedStatistics,
    ShareKeys,
    UnmaskRequest,
    UnmaskShares,
)
from py_shared.protocol.transport import ConnectionClosed
from py_shared.secure import fixed_point, statistics
from py_shared.secure.client import PrepareInput, SecAggClient, SecureRoundError
from py_shared.secure.crypto import Crypto
from py_shared.secure.precision import fixed_point_for
from py_shared.secure.statistics import Moments

log = logging.getLogger("pydisco.federated")
PHASE_TEXT = {
    "advertise": "keys sent, waiting for the others",
    "share": "sharing keys",
    "mask": "sending the masked update",
    "unmask": "unmasking the sum",
    "wait": "waiting for the round's result",
}


class SecureFederatedClient(FederatedClient):
    """A FederatedClient whose update only ever leaves the device masked (`crypto`: the platform's backend)."""

    def __init__(self, *args: Any, crypto: Crypto, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.crypto = crypto
        settings = self.task.secure
        self.codec = fixed_point_for(settings.clip_value, settings.max_participants)
        self.update: Tensor | None = None
        self.attempt: SecAggClient | None = None
        self.masked_sent = False
        self.statistics: SharedStatistics | None = None

    async def _exchange(self, update: Tensor) -> None:
        """Take part in the round's secure sum until its global model arrives."""
        round_, self.update, self.masked_sent = self.round, update.realize(), False
        await self._secure_sum("update", self._encoded, lambda: self.round != round_)
        self.update = None

    async def agree_statistics(self, moments: list[Moments]) -> NumericStats:
        """The federation's feature statistics: from the server if they were agreed before this client joined,
        else from a secure sum of everyone's moments (this client's among them)."""
        self._drain()  # they may have come right after the welcome
        if self.statistics is None:
            words = statistics.encode_moments(moments)

            async def encoded(key_list: KeyList) -> Tensor:
                return Tensor(words, dtype=dtypes.uint32, device=self.model.parameters()[0].device).realize()

            await self._secure_sum("statistics", encoded, lambda: self.statistics is not None)
        assert self.statistics is not None
        return NumericStats(self.statistics.mean, self.statistics.std)

    async def _secure_sum(self, purpose: Purpose, prepare: PrepareInput, done: Callable[[], bool]) -> None:
        """Take part in attempts of the server's current secure sum until `done()`."""
        round_, advertise = self.round, True
        while not done():
            try:
                if advertise:
                    await self._advertise(round_, purpose, prepare)
                    advertise = False
                message, payload = self._handle(await self._transport().receive())
                if isinstance(message, SecureAbort) and message.round == round_:
                    log.info("secure sum of round %d redone: %s", round_, message.reason)
                    advertise = True
                elif isinstance(message, SecureResult) and message.round == round_:
                    self._account(message)
                elif isinstance(message, Error) and message.code in ("bad_frame", "bad_message"):
                    # the server cannot read what this client sends (another protocol version?): waiting for a
                    # round this client cannot take part in would never end
                    raise Refused(
                        f"the server cannot take this client's secure-aggregation messages: {message.message}"
                    )
                elif not isinstance(message, GlobalModel | Error | SharedStatistics):
                    await self._step(message, payload)
            except ConnectionClosed as e:
                self._lost(e)
                await self._connect_with_backoff()
                advertise = True  # the server forgot this connection's keys: a fresh attempt
            except SecureRoundError as e:
                # leave this attempt: the server times us out and finishes without us or redoes the round
                log.warning("secure sum of round %d: %s", round_, e)
                self._phase("wait", str(e))
        self.attempt = None

    async def _advertise(self, round_: int, purpose: Purpose, prepare: PrepareInput) -> None:
        threshold = self.task.secure.threshold
        self.attempt = SecAggClient(self.crypto, self.task.id, round_, threshold, prepare, purpose)
        payload = await self.attempt.advertise()
        message = AdvertiseKeys(round=round_, samples=self.samples, purpose=purpose)
        await self._transport().send(encode_message(message, payload))
        self._phase("advertise")

    def _handle(self, frame: bytes) -> tuple[Message, bytes]:
        message, payload = super()._handle(frame)
        if isinstance(message, SharedStatistics):
            self.statistics = message
        return message, payload

    async def _step(self, message: object, payload: bytes) -> None:
        """Answer the server's message for the current attempt, if it is one."""
        attempt, send = self.attempt, self._transport().send
        if attempt is None:
            return
        if isinstance(message, KeyList):
            size = f"secure aggregation: {message.participants} participants, threshold {message.threshold}"
            self._report(secure=size)
            self._phase("share")
            shares = await attempt.on_key_list(message, payload)
            await send(encode_message(ShareKeys(round=message.round, attempt=message.attempt), shares))
        elif isinstance(message, ForwardedShares):
            self._phase("mask")
            masked = await attempt.on_forwarded_shares(message, payload)
            await send(encode_message(MaskedInput(round=message.round, attempt=message.attempt), masked))
            self.masked_sent = True
        elif isinstance(message, UnmaskRequest):
            self._phase("unmask")
            opened = attempt.on_unmask_request(message)
            await send(encode_message(UnmaskShares(round=message.round, attempt=message.attempt), opened))
            self._phase("wait")

    async def _encoded(self, key_list: KeyList) -> Tensor:
        """This client's input to the sum: its update, noised for distributed DP, weighted, fixed-point encoded."""
        if self.update is None:
            raise SecureRoundError("no update to contribute")
        privacy, update = self.task.privacy, self.update
        if privacy.distributed:
            std = privacy.noise_multiplier * privacy.clip_norm / math.sqrt(key_list.participants)
            update = update + gaussian_noise(int(update.shape[0]), std, str(update.device))
            weight = 1.0  # equal weights: one participant's influence on the sum stays within clip_norm
        elif key_list.weight_base < self.samples:
            raise SecureRoundError(f"the server's weight base {key_list.weight_base} is below our {self.samples}")
        else:
            weight = self.samples / key_list.weight_base
        if self.accountant is not None and not privacy.distributed and not self.masked_sent:
            self.accountant.step(privacy.noise_multiplier)  # client-side DP: this noised update leaves now
            self._report(epsilon=self.accountant.epsilon)
        return fixed_point.encode(update, self.codec, weight).realize()

    def _account(self, result: SecureResult) -> None:
        """Distributed DP: the released sum carried noise_multiplier x clip_norm of Gaussian noise."""
        if self.accountant is not None and self.task.privacy.distributed and self.masked_sent:
            self.accountant.step(result.noise_multiplier)
            self._report(epsilon=self.accountant.epsilon)
        text = f"secure aggregation: sum of {result.survivors} of {result.participants} participants"
        self._report(secure=text)

    def _phase(self, phase: str, detail: str = "") -> None:
        self._report(state="aggregating", detail=detail or PHASE_TEXT[phase])
