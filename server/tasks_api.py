"""The task API: list the tasks, give one's definition, serve its example data and the initial weights its creator
uploaded, create a task (with initial weights, optionally)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from py_shared.models import parameter_count
from py_shared.protocol.messages import join_token_problem
from py_shared.safetensors_file import flat_to_safetensors, safetensors_to_flat
from py_shared.task import TaskDefinition, task_from_json, task_to_json
from py_shared.typed_json import ValidationError, parse
from py_shared.weights import Slot
from server.store import Store
from server.task_catalog import Catalog

MAX_TASK_BYTES = 256 * 1024
MAX_INITIAL_MODEL_BYTES = 64 * 1024 * 1024  # a 16M-parameter model; sent base64 in the task's JSON
MAX_CREATE_BYTES = MAX_TASK_BYTES + (MAX_INITIAL_MODEL_BYTES + 2) // 3 * 4
# a model's update is one frame of 4 bytes a value; the server holds a few models per task (global, sum, frame)
MAX_MODEL_VALUES = 32 * 1024 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def token_refusal(catalog: Catalog, task_id: str, request: Request, what: str) -> JSONResponse | None:
    """A 401 unless the request carries the task's join token (a public task needs none)."""
    required = catalog.join_tokens.get(task_id, "")
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if required and not hmac.compare_digest(given.encode(), required.encode()):
        return _error(401, f"this task's {what} needs its join token (Authorization: Bearer ...)")
    return None


def summary(catalog: Catalog, task_id: str, online: Callable[[str], int]) -> dict[str, Any]:
    """One task as GET /api/tasks lists it."""
    task, example = catalog.tasks[task_id], catalog.examples.get(task_id)
    return {
        "id": task.id,
        "title": task.title,
        "data_type": task.data_type,
        "model": task.model.kind,
        "scheme": task.scheme,
        "private": task_id in catalog.join_tokens,
        "secure_aggregation": task.secure_aggregation,
        "differential_privacy": task.privacy.noise_multiplier > 0,
        "min_participants": task.min_participants,
        "online": online(task_id),
        "example_data": None
        if example is None
        else {
            "file": example.path.name,
            "bytes": example.path.stat().st_size,
            "summary": example.summary,
            "source": example.source,
            "licence": example.licence,
        },
    }


ModelBuild = Callable[[TaskDefinition], Awaitable[tuple[list[Slot], bytes]]]


async def _body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None as soon as it grows past `limit` (it is not read further)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _initial_weights(encoded: object, slots: list[Slot]) -> bytes:
    """Uploaded initial weights (base64 safetensors) as this server stores them: names and shapes of the task's
    model, finite float32 values, no foreign metadata. ValueError says what is wrong."""
    if not isinstance(encoded, str):
        raise ValueError("must be a safetensors file in base64")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be a safetensors file in base64") from None
    if len(blob) > MAX_INITIAL_MODEL_BYTES:
        raise ValueError(f"at most {MAX_INITIAL_MODEL_BYTES // 2**20} MiB")
    flat, _ = safetensors_to_flat(slots, blob)
    if not np.isfinite(np.frombuffer(flat, dtype=np.float32)).all():
        raise ValueError("the weights hold NaN or infinite values")
    return flat_to_safetensors(slots, flat)


def task_routes(
    catalog: Catalog, store: Store, admin_token: str, online: Callable[[str], int], build: ModelBuild
) -> list[Route]:
    """GET /api/tasks, /api/tasks/{id}, /api/tasks/{id}/example-data and /api/tasks/{id}/initial-model; POST
    /api/tasks. `online`: how many take part in a task now; `build`: a task's model layout and seeded weights."""

    async def list_tasks(request: Request) -> JSONResponse:
        return JSONResponse({"tasks": [summary(catalog, task_id, online) for task_id in catalog.tasks]})

    async def get_task(request: Request) -> JSONResponse:
        task_id = request.path_params["task_id"]
        if task_id not in catalog.tasks:
            return _error(404, f"no task {task_id!r}")
        return JSONResponse(task_to_json(catalog.tasks[task_id]))

    async def example_data(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        example = catalog.examples.get(task_id)
        if example is None:
            if task_id not in catalog.tasks:
                return _error(404, f"no task {task_id!r}")
            return _error(404, f"task {task_id!r} has no example data on this server")
        return FileResponse(example.path, media_type=example.media_type, filename=example.path.name)

    async def initial_model(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        if task_id not in catalog.tasks:
            return _error(404, f"no task {task_id!r}")
        if refused := token_refusal(catalog, task_id, request, "initial weights"):
            return refused
        blob = store.load_initial(task_id)
        if blob is None:
            return _error(404, f"task {task_id!r} starts from weights drawn from its seed, not uploaded ones")
        return Response(blob, media_type="application/octet-stream")

    async def create_task(request: Request) -> JSONResponse:
        """Body: {"task": <definition>, "join_token": "..." (optional: makes the task private), "initial_model":
        "<safetensors in base64>" (optional: the weights training starts from)}."""
        if admin_token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), admin_token.encode()):
                return _error(401, "creating tasks on this server needs its admin token (Authorization: Bearer ...)")
        body = await _body(request, MAX_CREATE_BYTES)
        if body is None:
            return _error(413, f"a task definition with its initial weights is at most {MAX_CREATE_BYTES} bytes")
        try:
            data = parse(body)
        except ValueError as e:
            return _error(400, f"the body {e}")
        if not isinstance(data, dict):
            return _error(400, 'send {"task": {...}, "join_token": "..."}')
        token = data.get("join_token", "")
        if not isinstance(token, str):
            return _error(400, "join_token: must be a string")
        if problem := join_token_problem(token):
            return _error(400, problem)
        try:
            task = task_from_json(data.get("task"))
        except ValidationError as e:
            return _error(400, str(e))
        try:
            values = parameter_count(task)
        except ValueError as e:
            return _error(400, f"model: {e}")
        if values > MAX_MODEL_VALUES:
            return _error(400, f"model: {values:,} parameters; this server takes models of up to {MAX_MODEL_VALUES:,}")
        if task.id in catalog.tasks:
            return _error(409, f"a task {task.id!r} already exists")
        initial = None
        if "initial_model" in data:
            try:
                slots, _ = await build(task)
            except RuntimeError as e:  # the builder's worker died: nothing was created
                return _error(503, f"initial_model: {e}; try again")
            try:
                initial = _initial_weights(data["initial_model"], slots)
            except ValueError as e:
                return _error(400, f"initial_model: {e}")
        elif len(body) > MAX_TASK_BYTES:
            return _error(413, f"a task definition is at most {MAX_TASK_BYTES} bytes")
        if task.id in catalog.tasks:  # created by another request while the model was built
            return _error(409, f"a task {task.id!r} already exists")
        if initial is not None:
            store.save_initial(task.id, initial)
        store.add_task(task, token)
        catalog.tasks[task.id] = task
        if token:
            catalog.join_tokens[task.id] = token
        return JSONResponse(summary(catalog, task.id, online), status_code=201)

    return [
        Route("/api/tasks", list_tasks, methods=["GET"]),
        Route("/api/tasks", create_task, methods=["POST"]),
        Route("/api/tasks/{task_id}", get_task),
        Route("/api/tasks/{task_id}/example-data", example_data),
        Route("/api/tasks/{task_id}/initial-model", initial_model),
    ]
