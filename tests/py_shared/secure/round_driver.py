"""Drives SecAggClient and SecAggServer against each other in process, with dropouts at chosen phases."""

from __future__ import annotations

import random
from collections.abc import Callable

from tinygrad import Tensor

from py_cpython.crypto import CPythonCrypto
from py_shared.protocol.messages import ProtocolError
from py_shared.protocol.secure_messages import KeyList
from py_shared.secure.client import SecAggClient
from py_shared.secure.server import SecAggServer

PHASES = ("advertise", "share", "mask", "unmask")
Tamper = Callable[[str, int, bytes], bytes]  # (phase, client, payload) -> what is sent instead


async def secure_sum(
    inputs: list[Tensor],
    drop: dict[str, set[int]] | None = None,
    degree: int = 0,
    fraction: float = 2 / 3,
    tamper: Tamper | None = None,
    record: list[bytes] | None = None,
    errors: list[tuple[int, ProtocolError]] | None = None,
) -> tuple[Tensor, list[int]]:
    """One attempt over `inputs` (uint32 vectors); client c stops answering from phase drop[...] on.

    Returns the unmasked sum and the clients that survived into it; `record` collects every payload the server
    received, `errors` every refusal (the refused client is then left out, as the server's room does)."""
    crypto = CPythonCrypto()
    drop = drop or {}
    size = int(inputs[0].shape[0])

    def prepare(c: int) -> Callable[[KeyList], object]:
        async def encoded(key_list: KeyList) -> Tensor:
            return inputs[c]

        return encoded

    clients = {f"c{c}": SecAggClient(crypto, "t", 0, fraction, prepare(c)) for c in range(len(inputs))}  # type: ignore[arg-type]
    server = SecAggServer(crypto, "t", 0, 0, size, fraction)
    gone: set[str] = set()

    def alive(phase: str) -> list[str]:
        for p in PHASES[: PHASES.index(phase) + 1]:
            gone.update(f"c{c}" for c in drop.get(p, set()))
        return [pid for pid in clients if pid not in gone]

    def send(phase: str, pid: str, payload: bytes) -> bytes:
        if tamper is not None:
            payload = tamper(phase, int(pid[1:]), payload)
        if record is not None:
            record.append(payload)
        return payload

    def deliver(pid: str, take: Callable[[str, bytes], None], payload: bytes) -> None:
        try:
            take(pid, payload)
        except ProtocolError as e:
            if errors is None:
                raise
            errors.append((int(pid[1:]), e))
            server.excluded.add(pid)

    for pid in alive("advertise"):
        server.advertise(pid, 10, send("advertise", pid, await clients[pid].advertise()))
    order = sorted(server.advertised)
    random.Random(0).shuffle(order)
    key_lists = server.start(order, degree)
    for pid in alive("share"):
        message, payload = key_lists[pid]
        deliver(pid, server.share_keys, send("share", pid, await clients[pid].on_key_list(message, payload)))
    forwarded = server.forward()
    for pid in alive("mask"):
        if pid in forwarded:
            message, payload = forwarded[pid]
            masked = await clients[pid].on_forwarded_shares(message, payload)
            deliver(pid, server.masked_input, send("mask", pid, masked))
    requests = server.request_unmask()
    for pid in alive("unmask"):
        if pid in requests:
            deliver(pid, server.unmask_shares, send("unmask", pid, clients[pid].on_unmask_request(requests[pid])))
    total = await server.finish()
    return total, sorted(int(m.id[1:]) for m in server.survivors)
