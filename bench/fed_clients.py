"""Simulated federated clients in worker processes, for bench.fed_scale and bench.fed_soak.

These benchmarks measure the server, so its clients must not share its CPU accounting or the driver's event
loop: each worker process holds many WebSocket connections on its own asyncio loop and obeys the driver's
commands over a multiprocessing pipe (one command, one reply dict). Times are time.monotonic(), one clock for
every process of a Linux machine, so the driver can set its "go" against the workers' receipt times.

honest_worker: clients that join, send an update when told and report when the next global model arrived.
misbehaving_worker: clients that rotate every phase among garbage frames, floods of bad frames, non-readers,
overflowing updates and reconnect storms, counting what the server answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import random
import resource
import socket
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from py_cli.websocket_transport import federated_url
from py_shared.protocol.framing import PREFIX, encode_frame
from py_shared.protocol.messages import GlobalModel, Join, Update, encode_message

JOIN_CONCURRENCY = 50  # connections opened at once by one worker: a 1000-client burst would only time out
JOIN_ATTEMPTS = 5  # tries per client: 50, 12, 3, 1 and 1 at once
MODES = ("garbage", "flood", "non_reader", "overflow", "storm")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of process `pid` (default: this one), from /proc."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MiB (VmRSS, what the server's /api/health reports as rss_bytes)."""
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return round(int(line.split()[1]) / 1024, 1)


def server_pid(url: str) -> int:
    """The pid of the `python -m server` listening on `url`'s port (running_server does not expose its process)."""
    port = str(urllib.parse.urlsplit(url).port)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"server" in argv and b"--port" in argv and argv[argv.index(b"--port") + 1].decode() == port:
            return int(entry)
    raise RuntimeError(f"no server process listens on port {port}")


def honest_update(index: int, round_: int, size: int) -> tuple[npt.NDArray[np.float32], int]:
    """Honest client `index`'s update for `round_` and its sample count: deterministic, so the driver can
    compute the exact aggregate the server must reach."""
    rng = np.random.default_rng([index, round_])
    return (rng.standard_normal(size, dtype=np.float32) * np.float32(0.01)), 1 + index % 5


def split_header(frame: bytes) -> tuple[dict[str, Any], int]:
    """A server frame's JSON header and where its payload starts, without copying the payload."""
    _, _, length = PREFIX.unpack_from(frame)
    header: dict[str, Any] = json.loads(frame[PREFIX.size : PREFIX.size + length])
    return header, PREFIX.size + length


async def open_connection(url: str, **options: Any) -> ClientConnection:
    """A WebSocket connection as the benchmarks open them: no size cap, no deflate, no proxy, and no client
    pings (the server pings; 1000 clients' own keepalives would only add noise)."""
    settings: dict[str, Any] = {"max_size": None, "compression": None, "proxy": None, "ping_interval": None}
    return await connect(url, open_timeout=60, **{**settings, **options})


class Client:
    """One honest participant: a connection and a reader that drains it, keeping the latest global model."""

    def __init__(self, url: str, task_id: str, index: int, keep_model: bool) -> None:
        self.url, self.task_id, self.index, self.keep_model = url, task_id, index, keep_model
        self.connection: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.round, self.size, self.model, self.received_at = -1, 0, b"", 0.0
        self.closed = True
        self.errors: Counter[str] = Counter()
        self.changed = asyncio.Event()

    async def join(self, timeout: float) -> None:
        """Connect, join and wait for the first global model; raises ConnectionError when that fails."""
        self.connection = connection = await open_connection(federated_url(self.url, self.task_id))
        self.closed, self.round = False, -1
        try:
            await connection.send(encode_message(Join(task_id=self.task_id, samples=1, client_name=f"b{self.index}")))
            self.reader = asyncio.create_task(self._read(connection))
            if not await self.wait_round(-1, timeout):
                raise ConnectionError(f"no global model after joining (errors: {dict(self.errors)})")
        except BaseException:
            self.closed = True  # so that the next attempt starts over
            connection.transport.abort()
            raise

    async def _read(self, connection: ClientConnection) -> None:
        try:
            async for frame in connection:
                if isinstance(frame, str):
                    self.errors["text_frame"] += 1
                    continue
                header, start = split_header(frame)
                if header.get("kind") == "global_model":
                    self.round, self.received_at = header["round"], time.monotonic()
                    if self.keep_model:
                        self.model = frame[start:]
                    self.changed.set()
                elif header.get("kind") == "welcome":
                    self.size = header["vector_size"]
                elif header.get("kind") == "error":
                    self.errors[header["code"]] += 1
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.changed.set()

    async def wait_round(self, above: int, timeout: float) -> bool:
        """Wait until a global model newer than `above` arrived; False on timeout or a closed connection."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.round <= above and not self.closed:
                    self.changed.clear()
                    await self.changed.wait()
        return self.round > above

    async def send(self, frame: bytes) -> bool:
        """Send one frame; False when the connection is gone."""
        if self.connection is None or self.closed:
            return False
        try:
            await self.connection.send(frame)
            return True
        except ConnectionClosed:
            return False

    async def close(self) -> None:
        """Leave on purpose."""
        if self.connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.connection.close()
        if self.reader is not None:
            self.reader.cancel()


async def _command(pipe: Connection) -> tuple[Any, ...]:
    command: tuple[Any, ...] = await asyncio.to_thread(pipe.recv)  # the loop keeps serving sockets meanwhile
    return command


async def _join_all(clients: list[Client], timeout: float) -> int:
    """Join every client that is not connected, JOIN_CONCURRENCY at a time; retry, as a real client would, those
    that fail or are dropped meanwhile, JOIN_ATTEMPTS times at most and each time fewer at once (down to one by
    one), so that a server that cannot take a burst of joins still gets its crowd; returns how many joins had to
    be made again (failed, or dropped by the server after joining)."""

    async def one(client: Client, gate: asyncio.Semaphore) -> bool:
        async with gate:
            try:
                await client.join(timeout)
                return True
            except Exception as e:  # refused, reset or timed out: counted, the benchmark goes on
                client.errors[f"join:{type(e).__name__}"] += 1
                return False

    attempts, first = 0, sum(1 for c in clients if c.closed)
    for attempt in range(JOIN_ATTEMPTS):
        if not any(c.closed for c in clients):
            await asyncio.sleep(1.0)  # a drop that the last joins caused shows a moment later
        todo = [c for c in clients if c.closed]
        if not todo:
            break
        gate = asyncio.Semaphore(max(1, JOIN_CONCURRENCY >> (2 * attempt)))
        await asyncio.gather(*(one(c, gate) for c in todo))
        attempts += len(todo)
    return attempts - first


async def _honest(pipe: Connection, url: str, task_id: str, indices: list[int], soak: bool, timeout: float) -> None:
    clients = [Client(url, task_id, i, keep_model=soak) for i in indices]
    drops = 0  # connections the server closed (or lost) while the client meant to stay
    fixed = b""  # fed_scale: one update frame per round shared by every client, so the clients stay cheap
    while True:
        command = await _command(pipe)
        cpu, started = cpu_seconds(), time.monotonic()
        if command[0] == "join":
            rejoins = await _join_all(clients, timeout)
            joined = [c for c in clients if not c.closed]
            first = joined[0] if joined else None
            pipe.send(
                {
                    "joined": len(joined),
                    "rejoins": rejoins,
                    "round": first.round if first else -1,
                    "size": first.size if first else 0,
                    "model": first.model if first else b"",
                    "seconds": time.monotonic() - started,
                    "cpu_s": cpu_seconds() - cpu,
                    "errors": dict(sum((c.errors for c in clients), Counter())),
                }
            )
        elif command[0] == "round":
            round_, send = command[1], command[2]
            lost = [c for c in clients if c.closed]
            drops += len(lost)
            if soak and lost:  # a dropped honest client rejoins, or the round could never close
                await _join_all(lost, timeout)
            live = [c for c in clients if not c.closed]
            if not send:
                frames = []
            elif not soak:
                if not fixed and live:
                    size = live[0].size
                    fixed = (np.random.default_rng(size).standard_normal(size, dtype=np.float32) * 0.01).tobytes()
                frames = [encode_message(Update(round=round_, samples=1), fixed)] * len(live) if live else []
            else:
                frames = []
                for c in live:
                    values, samples = honest_update(c.index, round_, c.size)
                    frames.append(encode_message(Update(round=round_, samples=samples), values.tobytes()))
            sent = await asyncio.gather(*(c.send(f) for c, f in zip(live, frames, strict=False)))
            got = await asyncio.gather(*(c.wait_round(round_, timeout) for c in live))
            receivers = [c for c, ok in zip(live, got, strict=True) if ok]
            closed_now = sum(1 for c in live if c.closed)
            digests = {hashlib.blake2b(c.model, digest_size=16).digest() for c in receivers} if soak else set()
            errors: Counter[str] = Counter()
            for c in clients:
                errors.update(c.errors)
                c.errors.clear()
            pipe.send(
                {
                    "round": round_,
                    "clients": len(clients),
                    "sent": sum(sent),
                    "received": len(receivers),
                    "new_round": max((c.round for c in receivers), default=-1),
                    "last_receipt": max((c.received_at for c in receivers), default=0.0),
                    "rejoined": len(lost),
                    "closed": closed_now,
                    "distinct_models": len(digests),
                    "model": receivers[0].model if soak and receivers else b"",
                    "errors": dict(errors),
                    "cpu_s": cpu_seconds() - cpu,
                }
            )
        elif command[0] == "stop":
            drops += sum(1 for c in clients if c.closed)
            await asyncio.gather(*(c.close() for c in clients))
            pipe.send({"dropped": drops})
            return


def honest_worker(pipe: Connection, url: str, task_id: str, indices: list[int], soak: bool, timeout: float) -> None:
    """Process target: honest clients `indices` of task `task_id`, obeying ("join",), ("round", r, send) and
    ("stop",). A round command sends each client's update for round r (unless `send` is false) and waits until
    every client has a newer global model.

    `soak`: every client sends its own honest_update, keeps the global model, and rejoins when dropped;
    otherwise all send one shared update (fed_scale). `timeout`: seconds to wait for a join or a round."""
    asyncio.run(_honest(pipe, url, task_id, indices, soak, timeout))


class Misbehaviour:
    """The misbehaving clients of one worker: each phase, client j plays MODES[(j + phase) % 5]."""

    def __init__(self, url: str, task_id: str, count: int, linger_phases: int) -> None:
        self.url, self.task_id = federated_url(url, task_id), task_id
        self.count, self.linger_phases = count, linger_phases
        self.stats: Counter[str] = Counter()
        self.running: dict[asyncio.Task[None], str] = {}  # this phase's tasks and their modes
        self.current = 0  # the phase now played: a looping mode stops when it changes
        self.lingering: list[tuple[int, ClientConnection]] = []  # non-readers and the phase they are let go
        self.releasing: set[asyncio.Task[None]] = set()  # non-readers being let go: they outlive a phase
        self.round, self.size = 0, 0  # the task's, as this worker's last global model and welcome said
        self.join_frame = encode_message(Join(task_id=task_id, samples=1, client_name="misbehaving"))

    async def phase(self, number: int) -> None:
        """End the previous phase's behaviour and start this one's."""
        self.current = number
        await self._end_running()
        expired = [c for until, c in self.lingering if until <= number]
        self.lingering = [(until, c) for until, c in self.lingering if until > number]
        self.releasing.update(asyncio.create_task(self._release(c)) for c in expired)
        self.releasing = {task for task in self.releasing if not task.done()}
        for j in range(self.count):
            mode = MODES[(j + number) % len(MODES)]
            rng = random.Random(f"{j}-{number}")  # reproducible garbage
            self.running[asyncio.create_task(self._play(mode, rng, number))] = mode

    async def _end_running(self) -> None:
        for task in self.running:
            task.cancel()
        if self.running:  # a task that ignores its cancellation is counted and left behind, not waited for
            _, stuck = await asyncio.wait(self.running, timeout=5)
            for task in stuck:
                self.stats[f"{self.running[task]}.stuck_after_cancel"] += 1
        self.running = {}

    async def stop(self) -> None:
        """End everything, non-readers included."""
        self.current = -1
        await self._end_running()
        self.releasing.update(asyncio.create_task(self._release(c)) for _, c in self.lingering)
        await asyncio.gather(*self.releasing, return_exceptions=True)
        self.lingering, self.releasing = [], set()

    async def _play(self, mode: str, rng: random.Random, number: int) -> None:
        try:
            await getattr(self, f"_{mode}")(rng, number)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a refusal or a drop is the point; the mode only counts it
            self.stats[f"{mode}.exception.{type(e).__name__}"] += 1

    async def _count_replies(self, mode: str, connection: ClientConnection, codes: asyncio.Queue[str]) -> None:
        try:
            async for frame in connection:
                if isinstance(frame, bytes):
                    header, _ = split_header(frame)
                    if header.get("kind") == "error":
                        self.stats[f"{mode}.refused.{header['code']}"] += 1
                        codes.put_nowait(header["code"])
                    elif header.get("kind") == "global_model":
                        self.round = header["round"]
                    elif header.get("kind") == "welcome":
                        self.size = header["vector_size"]
        except ConnectionClosed:
            pass
        if connection.close_code is not None:
            self.stats[f"{mode}.closed_by_server.{connection.close_code}"] += 1

    async def _garbage(self, rng: random.Random, number: int) -> None:
        """A participant that sends 8 malformed frames of assorted kinds, spaced out, then stays connected."""
        connection = await open_connection(self.url)
        codes: asyncio.Queue[str] = asyncio.Queue()
        reader = asyncio.create_task(self._count_replies("garbage", connection, codes))
        try:
            frames = garbage_frames(rng)
            if rng.random() < 0.5:  # garbage before joining, too
                await connection.send(frames.pop())
            await connection.send(self.join_frame)
            for frame in rng.sample(frames, 8):
                await connection.send(frame)
                self.stats["garbage.frames"] += 1
                await asyncio.sleep(0.2)
            await asyncio.sleep(3600)
        finally:
            connection.transport.abort()
            reader.cancel()

    async def _flood(self, rng: random.Random, number: int) -> None:
        """Connect, fire 60 bad frames without waiting, see the server close the connection, and again."""
        while self.current == number:
            connection = await open_connection(self.url)
            try:
                if rng.random() < 0.5:
                    await connection.send(self.join_frame)
                with contextlib.suppress(ConnectionClosed):  # the server may close before the last frame
                    for _ in range(60):
                        await connection.send(rng.randbytes(rng.randint(1, 64)))
                        self.stats["flood.frames"] += 1
                try:
                    async with asyncio.timeout(10):
                        async for _ in connection:
                            pass
                except ConnectionClosed:
                    pass
                except TimeoutError:
                    self.stats["flood.not_closed_within_10s"] += 1
                if connection.close_code is not None:
                    self.stats[f"flood.closed_by_server.{connection.close_code}"] += 1
            finally:
                connection.transport.abort()
            await asyncio.sleep(0.2)

    async def _non_reader(self, rng: random.Random, number: int) -> None:
        """Join, then never read: a 4 KiB receive buffer and a one-frame queue, so the server's frames pile up on
        its side. The connection outlives the phase by linger_phases phases."""
        host, port = urllib.parse.urlsplit(self.url).hostname, urllib.parse.urlsplit(self.url).port
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: it sets the window
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
            connection = await open_connection(self.url, sock=sock, max_queue=1)
        except BaseException:
            sock.close()
            raise
        self.lingering.append((number + self.linger_phases, connection))  # released later, whatever happens now
        await connection.send(self.join_frame)
        self.stats["non_reader.opened"] += 1

    async def _release(self, connection: ClientConnection) -> None:
        """Read what a non-reader left unread, to see whether the server still held it open, and close it."""
        frames = 0
        try:
            async with asyncio.timeout(1.5):  # joins and leaves keep a live connection busy: no silence to wait for
                async for _ in connection:
                    frames += 1
        except (ConnectionClosed, TimeoutError):
            pass
        finally:
            self.stats["non_reader.frames_left_unread"] += frames
            if connection.close_code is not None:
                self.stats[f"non_reader.closed_by_server.{connection.close_code}"] += 1
            else:
                self.stats["non_reader.still_open"] += 1
            connection.transport.abort()

    async def _overflow(self, rng: random.Random, number: int) -> None:
        """Join, then send updates for the current round that must be refused: huge, NaN, infinite, one huge
        value among zeros, and one value short; each answer is checked against the expected refusal."""
        connection = await open_connection(self.url)
        codes: asyncio.Queue[str] = asyncio.Queue()
        reader = asyncio.create_task(self._count_replies("overflow", connection, codes))
        try:
            await connection.send(self.join_frame)
            async with asyncio.timeout(30):
                while not self.size:
                    await asyncio.sleep(0.05)
            size = self.size
            one_huge = np.zeros(size, np.float32)
            one_huge[rng.randrange(size)] = 1e30
            payloads = {
                "too_large": np.full(size, 3e38, np.float32),
                "not_finite": np.full(size, np.nan, np.float32),
                "not_finite.inf": np.full(size, -np.inf, np.float32),
                "too_large.one": one_huge,
                "wrong_length": np.zeros(size - 1, np.float32),
            }
            await asyncio.sleep(0.3)  # the welcome and model first, so self.round is this connection's round
            for expected, values in payloads.items():
                await connection.send(encode_message(Update(round=self.round, samples=3), values.tobytes()))
                try:
                    async with asyncio.timeout(5):
                        code = await codes.get()
                except TimeoutError:
                    code = "no_answer"
                ok = code == expected.split(".")[0] or code == "stale_round"  # a round may close meanwhile
                self.stats["overflow.refused_as_expected" if ok else f"overflow.UNEXPECTED.{expected}.{code}"] += 1
                await asyncio.sleep(0.2)
            await asyncio.sleep(3600)
        finally:
            connection.transport.abort()
            reader.cancel()

    async def _storm(self, rng: random.Random, number: int) -> None:
        """Connect, join and close, over and over: half politely after the welcome, half by cutting the TCP
        connection right after the join."""
        while self.current == number:
            try:
                connection = await open_connection(self.url)
            except (OSError, TimeoutError) as e:
                self.stats[f"storm.failed.{type(e).__name__}"] += 1
                continue
            try:
                await connection.send(self.join_frame)
                if rng.random() < 0.5:
                    async with asyncio.timeout(10):  # not wait_for: on 3.11 it can swallow a cancellation
                        await connection.recv()
                        await connection.close()
                self.stats["storm.cycles"] += 1
            except (OSError, ConnectionClosed, TimeoutError) as e:
                self.stats[f"storm.failed.{type(e).__name__}"] += 1
            finally:
                connection.transport.abort()  # the impolite half, and whatever a phase's end interrupts
            await asyncio.sleep(0.1)


def raw(header: bytes) -> bytes:
    """A frame with `header` as its header bytes, whatever they hold."""
    return PREFIX.pack(b"PD", 1, len(header)) + header


def garbage_frames(rng: random.Random) -> list[bytes | str]:
    """Malformed frames of every kind the endpoint must refuse by name."""
    update = encode_message(Update(round=0, samples=1), b"\0\0\0\0")
    return [
        rng.randbytes(rng.randint(1, 4096)),  # not a frame at all
        b"",
        "a text frame",
        PREFIX.pack(b"PD", 1, 2**31) + b"{}",  # announces a 2 GB header
        PREFIX.pack(b"PD", 9, 2) + b"{}",  # another protocol version
        PREFIX.pack(b"PD", 1, 64) + rng.randbytes(64),  # a header that is not UTF-8 JSON
        encode_frame({"kind": "update", "round": "one", "samples": 1}, b"\0\0\0\0"),
        encode_frame({"kind": "update", "round": 0, "samples": 0}, b"\0\0\0\0"),
        encode_frame({"kind": "nonsense"}),
        raw(b"[" * 3000 + b"]" * 3000),  # nested too deeply
        raw(b'{"kind":"update","round":' + b"9" * 5000 + b',"samples":1}'),  # an integer too long to read
        encode_message(GlobalModel(round=0), b"\0\0\0\0"),  # a server's message
        update[:-2],  # a payload that is not whole float32s
    ]


async def _misbehaving(pipe: Connection, url: str, task_id: str, count: int, linger_phases: int) -> None:
    crowd = Misbehaviour(url, task_id, count, linger_phases)
    while True:
        command = await _command(pipe)
        if command[0] == "phase":
            await crowd.phase(command[1])
            pipe.send({"phase": command[1]})
        elif command[0] == "stats":
            pipe.send(dict(crowd.stats))
        elif command[0] == "stop":
            await crowd.stop()
            pipe.send(dict(crowd.stats))
            return


def misbehaving_worker(pipe: Connection, url: str, task_id: str, count: int, linger_phases: int) -> None:
    """Process target: `count` misbehaving clients, obeying ("phase", n), ("stats",) and ("stop",); each reply
    is the counters so far ("<mode>.<what>": n). Non-readers stay connected `linger_phases` phases."""
    asyncio.run(_misbehaving(pipe, url, task_id, count, linger_phases))


class Workers:
    """Worker processes (spawned: a fresh interpreter, no copy of the driver's state) and their pipes."""

    def __init__(self, target: Callable[..., None], arguments: list[tuple[Any, ...]]) -> None:
        """Start one process per entry of `arguments`: target(pipe, *entry)."""
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for entry in arguments:
            mine, theirs = context.Pipe()
            process = context.Process(target=target, args=(theirs, *entry), daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(mine)
            self.processes.append(process)

    def send(self, command: tuple[Any, ...]) -> None:
        """Give every worker `command` at once."""
        for pipe in self.pipes:
            pipe.send(command)

    def replies(self, timeout: float) -> list[dict[str, Any]]:
        """Every worker's reply to the last command; TimeoutError if one is later than `timeout` seconds."""
        deadline = time.monotonic() + timeout
        answers = []
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"a client worker did not answer within {timeout:.0f} s")
            answers.append(pipe.recv())
        return answers

    def ask(self, command: tuple[Any, ...], timeout: float) -> list[dict[str, Any]]:
        """send, then replies."""
        self.send(command)
        return self.replies(timeout)

    def pids(self) -> list[int]:
        """The workers' process ids."""
        return [p.pid for p in self.processes if p.pid is not None]

    def stop(self, timeout: float = 60) -> list[dict[str, Any]]:
        """Ask every worker to stop and wait for it; returns their last replies (empty if one did not answer)."""
        try:
            answers = self.ask(("stop",), timeout)
        except (TimeoutError, OSError, EOFError):
            answers = []
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
        return answers
