"""The task WebSocket endpoints, /api/tasks/{id}/federated and /api/tasks/{id}/decentralized: admission, limits,
and dispatch of each message to the task's room (server.federation.room for federated tasks, whose clients send
models; server.decentralized.peer_room for decentralized ones, whose peers send signaling only).

Every refusal is an Error message to that sender alone (fatal ones close the connection); nothing a client sends
can reach the room unless it decoded, validated and came from a joined participant. Connection floods are
bounded per address and in total, silent connections are dropped, and a client that keeps sending garbage is
disconnected. Until it has joined, a connection may send frames of JOIN_FRAME_BYTES only (checked on the frame
header, before the payload is read); after, what its room allows (a model, or a signaling message). Replies and
broadcasts go through the connection's Outbox, so nobody waits for a slow reader, and a federated room is created
(its initial model drawn in a worker process) without stopping the event loop.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from py_shared.protocol.messages import (
    Error,
    ErrorCode,
    Join,
    Leave,
    ProtocolError,
    decode_message,
    encode_message,
)
from py_shared.protocol.peer_messages import IceServer
from py_shared.safetensors_file import safetensors_to_flat
from py_shared.task import Scheme, TaskDefinition
from py_shared.weights import Slot
from server.connection_control import ConnectionControl, control_of
from server.decentralized.peer_room import PeerRoom
from server.federation.initial_model import ModelBuilder
from server.federation.outbox import Outbox
from server.federation.room import Participant, Room, TaskRoom
from server.store import Store
from server.task_catalog import Catalog
from server.tasks_api import token_refusal

R = TypeVar("R")

log = logging.getLogger("pydisco.federation")

CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013
JOIN_FRAME_BYTES = 64 * 1024  # a join message is a header of a few hundred bytes; the token is at most 256 chars
# a joined client's frame a little over its task's limit still gets a too_large message; a larger one is refused
# by the connection (close 1009) before its payload is read
READ_SLACK = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on what clients can make the server hold."""

    max_connections: int = 1000
    max_connections_per_address: int = 64
    max_bad_frames: int = 20  # then the connection is closed
    join_timeout_s: float = 30.0  # a connection must join within this time
    send_queue_frames: int = 64  # a participant this many messages behind is dropped
    send_timeout_s: float = 30.0  # ... and so is one whose connection takes no frame for this long
    concurrent_model_sends: int = 8  # large frames in the transports' buffers at once, over all connections
    ice_servers: tuple[IceServer, ...] = ()  # STUN/TURN servers told to decentralized peers


class Federation:
    """The rooms of every federated task, created on first use, and the endpoint that feeds them."""

    def __init__(self, catalog: Catalog, store: Store, limits: Limits) -> None:
        self.catalog, self.store, self.limits = catalog, store, limits
        self.rooms: dict[str, asyncio.Future[TaskRoom]] = {}
        self.peer_rooms: dict[str, asyncio.Future[PeerRoom]] = {}
        self.connections: dict[str, int] = {}
        self.builder = ModelBuilder()
        self.large_sends: asyncio.Semaphore | None = None

    async def room(self, task_id: str) -> TaskRoom:
        """The federated task's room, created (and resumed from the store) on first use; concurrent callers share
        one."""
        return await _shared(self.rooms, task_id, lambda: self._create_room(task_id))

    async def _create_room(self, task_id: str) -> TaskRoom:
        task = self.catalog.tasks[task_id]
        slots, initial = await self.initial_model(task)
        return TaskRoom(task, self.store, slots, initial)

    async def initial_model(self, task: TaskDefinition) -> tuple[list[Slot], bytes]:
        """The task's model layout and the weights it starts from: its creator's upload, or else drawn from its
        seed (in the builder's worker)."""
        slots, initial = await self.builder.build(task)
        if (uploaded := self.store.load_initial(task.id)) is not None:
            initial, _ = safetensors_to_flat(slots, uploaded)  # checked when the task was created
        return slots, initial

    def online(self, task_id: str) -> int:
        """How many participants (clients or peers) are connected to the task now."""
        room = self.rooms.get(task_id) or self.peer_rooms.get(task_id)
        if room is None or not room.done() or room.cancelled() or room.exception() is not None:
            return 0
        return len(room.result().participants)

    def close(self) -> None:
        """Stop the model builder's worker process (at shutdown)."""
        self.builder.close()

    async def model_file(self, request: Request) -> Response:
        """GET /api/tasks/{id}/model: the current global model as safetensors (a private task needs its token)."""
        task_id = request.path_params["task_id"]
        task = self.catalog.tasks.get(task_id)
        if task is None or task.scheme != "federated":
            return JSONResponse({"error": f"no federated task {task_id!r}"}, status_code=404)
        if refused := token_refusal(self.catalog, task_id, request, "model"):
            return refused
        room = await self.room(task_id)
        headers = {
            "content-disposition": f'attachment; filename="{task_id}-round{room.round}.safetensors"',
            "x-pydisco-round": str(room.round),
        }
        return Response(room.safetensors(), media_type="application/octet-stream", headers=headers)

    async def federated_endpoint(self, websocket: WebSocket) -> None:
        """/api/tasks/{id}/federated: one client's connection, from handshake to close."""
        await self._endpoint(websocket, "federated")

    async def decentralized_endpoint(self, websocket: WebSocket) -> None:
        """/api/tasks/{id}/decentralized: one peer's signaling connection, from handshake to close."""
        await self._endpoint(websocket, "decentralized")

    async def _endpoint(self, websocket: WebSocket, scheme: Scheme) -> None:
        address = websocket.client.host if websocket.client else "-"
        await websocket.accept()
        if sum(self.connections.values()) >= self.limits.max_connections or (
            self.connections.get(address, 0) >= self.limits.max_connections_per_address
        ):
            log.warning("refused a connection from %s: too many connections", address)
            await _fatal(websocket, "server_full", "too many connections; try again later", CLOSE_TRY_LATER)
            return
        self.connections[address] = self.connections.get(address, 0) + 1
        try:
            await self._serve(websocket, websocket.path_params["task_id"], address, scheme)
        except WebSocketDisconnect:
            pass
        finally:
            self.connections[address] -= 1
            if not self.connections[address]:
                del self.connections[address]

    async def _room_for(self, task: TaskDefinition) -> Room:
        if task.scheme == "federated":
            return await self.room(task.id)
        return await _shared(self.peer_rooms, task.id, lambda: self._create_peer_room(task))

    async def _create_peer_room(self, task: TaskDefinition) -> PeerRoom:
        _, initial = await self.initial_model(task)
        return PeerRoom(task, self.limits.ice_servers, initial)

    async def _serve(self, websocket: WebSocket, task_id: str, address: str, scheme: Scheme) -> None:
        task = self.catalog.tasks.get(task_id)
        if task is None or task.scheme != scheme:
            why = "does not exist" if task is None else f"is {task.scheme}, not {scheme}"
            await _fatal(websocket, "unknown_task", f"task {task_id!r} {why} on this server", 4404)
            return
        control = control_of(websocket.scope)
        if control is not None:
            control.limit_frames(JOIN_FRAME_BYTES + READ_SLACK)
        if self.large_sends is None:  # created here, on the server's event loop
            self.large_sends = asyncio.Semaphore(self.limits.concurrent_model_sends)
        outbox = Outbox(
            websocket.send_bytes, control, self.large_sends, self.limits.send_queue_frames, self.limits.send_timeout_s
        )
        writer = asyncio.ensure_future(outbox.run())
        dropped = asyncio.ensure_future(outbox.dropped.wait())
        participant: Participant | None = None
        try:
            try:
                room = await self._room_for(task)
            except RuntimeError as e:
                log.error("task %s: %s", task_id, e)
                await _fatal(websocket, "server_error", f"{e}; try again later", CLOSE_TRY_LATER)
                return
            bad_frames = 0
            while True:
                timeout = None if participant else self.limits.join_timeout_s
                reader = asyncio.ensure_future(_receive_bytes(websocket))
                await asyncio.wait({reader, dropped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not reader.done():
                    reader.cancel()
                    if outbox.dropped.is_set():
                        who = participant.id if participant else address
                        log.warning("task %s: dropped %s: %s", task_id, who, outbox.reason)
                        await _abandon(websocket, control, f"dropped: {outbox.reason}")
                    else:
                        await _fatal(websocket, "unexpected", "no join message arrived in time", CLOSE_POLICY)
                    return
                frame = reader.result()
                try:
                    if frame is None:
                        raise ProtocolError("bad_frame", "text frames are not part of the protocol: send binary")
                    message, payload = decode_message(frame, room.max_frame_bytes if participant else JOIN_FRAME_BYTES)
                    if participant is None:
                        if not isinstance(message, Join):
                            raise ProtocolError("unexpected", f"join the task before sending {message.kind!r}")
                        participant = self._admit(room, message, outbox)
                        if participant is None:
                            await _fatal(websocket, "unauthorized", "wrong or missing join token for this task", 4403)
                            return
                        if control is not None:
                            control.limit_frames(room.max_frame_bytes + READ_SLACK)
                        await room.join(participant)
                    elif isinstance(message, Leave):
                        await websocket.close()
                        return
                    else:
                        await room.handle(participant.id, message, payload)
                except ProtocolError as e:
                    bad_frames += 1
                    who = participant.id if participant else address
                    log.warning("task %s: bad input from %s (%s): %s", task_id, who, e.code, e)
                    if bad_frames > self.limits.max_bad_frames:
                        await _fatal(websocket, e.code, f"too many bad messages; last one: {e}", CLOSE_POLICY)
                        return
                    outbox.put(encode_message(Error(code=e.code, message=str(e))))
                # let go of the update's bytes now, not when the next message arrives: a thousand participants
                # waiting for the round to close would otherwise each hold their last update
                frame = payload = b""
        finally:
            if participant is not None:
                await room.leave(participant.id)
            outbox.drop("the connection ended")
            for pending in (writer, dropped):
                pending.cancel()

    def _admit(self, room: Room, join: Join, outbox: Outbox) -> Participant | None:
        """The new participant, or None when its token is wrong."""
        if join.task_id != room.task.id:
            raise ProtocolError("unknown_task", f"this connection is for task {room.task.id!r}, not {join.task_id!r}")
        required = self.catalog.join_tokens.get(room.task.id, "")
        if required and not hmac.compare_digest(join.token.encode(), required.encode()):
            log.warning("task %s: refused a join with a wrong or missing token", room.task.id)
            return None
        return Participant(secrets.token_hex(4), join.client_name or "-", outbox.put, outbox.put_news)


async def _receive_bytes(websocket: WebSocket) -> bytes | None:
    """The next binary frame (None for a text frame); raises WebSocketDisconnect when the client goes."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    data = message.get("bytes")
    return bytes(data) if data is not None else None


async def _abandon(websocket: WebSocket, control: ConnectionControl | None, reason: str) -> None:
    """Close a connection whose peer may not be reading: politely if that is quick, else by aborting it."""
    try:
        await asyncio.wait_for(websocket.close(CLOSE_POLICY, reason[:120]), 1.0)
    except Exception:  # TimeoutError included: its buffer is full and will stay so
        pass
    if control is not None:
        control.abort()


async def _fatal(websocket: WebSocket, code: ErrorCode, text: str, close_code: int) -> None:
    try:
        await websocket.send_bytes(encode_message(Error(code=code, message=text, fatal=True)))
        await websocket.close(close_code)
    except Exception:  # the client may already be gone; there is nobody left to tell
        pass


async def _shared(rooms: dict[str, asyncio.Future[R]], task_id: str, create: Callable[[], Awaitable[R]]) -> R:
    """The task's room, created on first use; concurrent callers share one, and a failed creation is retried by
    the next caller."""
    if task_id not in rooms:
        rooms[task_id] = asyncio.ensure_future(create())
    try:
        return await asyncio.shield(rooms[task_id])
    except Exception:
        rooms.pop(task_id, None)
        raise
