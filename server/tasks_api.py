"""The task API: list the tasks, give one's definition, serve its example data, create a task."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from py_shared.models import parameter_count
from py_shared.protocol.messages import join_token_problem
from py_shared.task import task_from_json, task_to_json
from py_shared.typed_json import ValidationError, parse
from server.store import Store
from server.task_catalog import Catalog

MAX_TASK_BYTES = 256 * 1024
# a model's update is one frame of 4 bytes a value; the server holds a few models per task (global, sum, frame)
MAX_MODEL_VALUES = 32 * 1024 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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


def task_routes(
    catalog: Catalog, store: Store, admin_token: str, online: Callable[[str], int] = lambda task_id: 0
) -> list[Route]:
    """GET /api/tasks, /api/tasks/{id} and /api/tasks/{id}/example-data; POST /api/tasks. `online`: how many
    take part in a task now."""

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

    async def create_task(request: Request) -> JSONResponse:
        """Body: {"task": <definition>, "join_token": "..." (optional: makes the task private)}."""
        if admin_token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), admin_token.encode()):
                return _error(401, "creating tasks on this server needs its admin token (Authorization: Bearer ...)")
        body = await request.body()
        if len(body) > MAX_TASK_BYTES:
            return _error(413, f"a task definition is at most {MAX_TASK_BYTES} bytes")
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
    ]
