"""The federated WebSocket endpoint, /api/tasks/{id}/federated: admission, limits, and message dispatch.

Every refusal is an Error message to that sender alone (fatal ones close the connection); nothing a client sends
can reach the room unless it decoded, validated and came from a joined participant. Connection floods are
bounded per address and in total, silent connections are dropped, and a client that keeps sending garbage is
disconnected.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from py_shared.protocol.messages import (
    Error,
    ErrorCode,
    Join,
    Leave,
    ProtocolError,
    Update,
    decode_message,
    encode_message,
)
from py_shared.protocol.secure_messages import AdvertiseKeys, MaskedInput, ShareKeys, UnmaskShares
from server.federation.room import Participant, Send, TaskRoom
from server.store import Store
from server.task_catalog import Catalog

log = logging.getLogger("pydisco.federation")

CLIENT_SECURE = (AdvertiseKeys, ShareKeys, MaskedInput, UnmaskShares)
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013


@dataclass(frozen=True)
class Limits:
    """Bounds on what clients can make the server hold."""

    max_connections: int = 1000
    max_connections_per_address: int = 64
    max_bad_frames: int = 20  # then the connection is closed
    join_timeout_s: float = 30.0  # a connection must join within this time


class Federation:
    """The rooms of every federated task, created on first use, and the endpoint that feeds them."""

    def __init__(self, catalog: Catalog, store: Store, limits: Limits) -> None:
        self.catalog, self.store, self.limits = catalog, store, limits
        self.rooms: dict[str, TaskRoom] = {}
        self.connections: dict[str, int] = {}

    def room(self, task_id: str) -> TaskRoom:
        """The task's room, created (and resumed from the store) on first use."""
        if task_id not in self.rooms:
            self.rooms[task_id] = TaskRoom(self.catalog.tasks[task_id], self.store)
        return self.rooms[task_id]

    async def model_file(self, request: Request) -> Response:
        """GET /api/tasks/{id}/model: the current global model as safetensors (a private task needs its token)."""
        task_id = request.path_params["task_id"]
        task = self.catalog.tasks.get(task_id)
        if task is None or task.scheme != "federated":
            return JSONResponse({"error": f"no federated task {task_id!r}"}, status_code=404)
        required = self.catalog.join_tokens.get(task_id, "")
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if required and not hmac.compare_digest(given.encode(), required.encode()):
            return JSONResponse(
                {"error": "this task's model needs its join token (Authorization: Bearer ...)"}, status_code=401
            )
        room = self.room(task_id)
        headers = {
            "content-disposition": f'attachment; filename="{task_id}-round{room.round}.safetensors"',
            "x-pydisco-round": str(room.round),
        }
        return Response(room.safetensors(), media_type="application/octet-stream", headers=headers)

    async def endpoint(self, websocket: WebSocket) -> None:
        """Serve one client connection from handshake to close."""
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
            await self._serve(websocket, websocket.path_params["task_id"], address)
        except WebSocketDisconnect:
            pass
        finally:
            self.connections[address] -= 1
            if not self.connections[address]:
                del self.connections[address]

    async def _serve(self, websocket: WebSocket, task_id: str, address: str) -> None:
        task = self.catalog.tasks.get(task_id)
        if task is None or task.scheme != "federated":
            why = "does not exist" if task is None else f"is {task.scheme}, not federated"
            await _fatal(websocket, "unknown_task", f"task {task_id!r} {why} on this server", 4404)
            return
        room = self.room(task_id)
        participant: Participant | None = None
        bad_frames = 0
        lock = asyncio.Lock()

        async def send(frame: bytes) -> None:
            async with lock:  # a broadcast and a reply must not interleave on one socket
                await websocket.send_bytes(frame)

        try:
            while True:
                timeout = None if participant else self.limits.join_timeout_s
                try:
                    frame = await asyncio.wait_for(_receive_bytes(websocket), timeout)
                except TimeoutError:
                    await _fatal(websocket, "unexpected", "no join message arrived in time", CLOSE_POLICY)
                    return
                try:
                    if frame is None:
                        raise ProtocolError("bad_frame", "text frames are not part of the protocol: send binary")
                    message, payload = decode_message(frame, room.max_frame_bytes)
                    if participant is None:
                        if not isinstance(message, Join):
                            raise ProtocolError("unexpected", f"join the task before sending {message.kind!r}")
                        participant = await self._admit(websocket, room, message, send)
                        if participant is None:
                            return
                    elif isinstance(message, Update):
                        await room.update(participant.id, message, payload)
                    elif isinstance(message, CLIENT_SECURE) and room.secure is not None:
                        await room.secure.handle(participant.id, message, payload)
                    elif isinstance(message, Leave):
                        await websocket.close()
                        return
                    else:
                        raise ProtocolError("unexpected", f"a client does not send {message.kind!r} messages here")
                except ProtocolError as e:
                    bad_frames += 1
                    who = participant.id if participant else address
                    log.warning("task %s: bad input from %s (%s): %s", task_id, who, e.code, e)
                    if bad_frames > self.limits.max_bad_frames:
                        await _fatal(websocket, e.code, f"too many bad messages; last one: {e}", CLOSE_POLICY)
                        return
                    await send(encode_message(Error(code=e.code, message=str(e))))
        finally:
            if participant is not None:
                await room.leave(participant.id)

    async def _admit(self, websocket: WebSocket, room: TaskRoom, join: Join, send: Send) -> Participant | None:
        if join.task_id != room.task.id:
            raise ProtocolError("unknown_task", f"this connection is for task {room.task.id!r}, not {join.task_id!r}")
        required = self.catalog.join_tokens.get(room.task.id, "")
        if required and not hmac.compare_digest(join.token.encode(), required.encode()):
            log.warning("task %s: refused a join with a wrong or missing token", room.task.id)
            await _fatal(websocket, "unauthorized", "wrong or missing join token for this task", 4403)
            return None
        participant = Participant(secrets.token_hex(4), join.client_name or "-", send)
        await room.join(participant)
        return participant


async def _receive_bytes(websocket: WebSocket) -> bytes | None:
    """The next binary frame (None for a text frame); raises WebSocketDisconnect when the client goes."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    data = message.get("bytes")
    return bytes(data) if data is not None else None


async def _fatal(websocket: WebSocket, code: ErrorCode, text: str, close_code: int) -> None:
    try:
        await websocket.send_bytes(encode_message(Error(code=code, message=text, fatal=True)))
        await websocket.close(close_code)
    except Exception:  # the client may already be gone; there is nobody left to tell
        pass
