"""The task API: list the tasks, give one's definition, serve its example data."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from py_shared.task import task_to_json
from server.task_catalog import Catalog


def _not_found(task_id: str) -> JSONResponse:
    return JSONResponse({"error": f"no task {task_id!r}"}, status_code=404)


def task_routes(catalog: Catalog) -> list[Route]:
    """GET /api/tasks, /api/tasks/{id} and /api/tasks/{id}/example-data."""

    def summary(task_id: str) -> dict[str, Any]:
        task, example = catalog.tasks[task_id], catalog.examples.get(task_id)
        return {
            "id": task.id,
            "title": task.title,
            "data_type": task.data_type,
            "model": task.model.kind,
            "scheme": task.scheme,
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

    async def list_tasks(request: Request) -> JSONResponse:
        return JSONResponse({"tasks": [summary(task_id) for task_id in catalog.tasks]})

    async def get_task(request: Request) -> JSONResponse:
        task_id = request.path_params["task_id"]
        if task_id not in catalog.tasks:
            return _not_found(task_id)
        return JSONResponse(task_to_json(catalog.tasks[task_id]))

    async def example_data(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        example = catalog.examples.get(task_id)
        if example is None:
            return (
                _not_found(task_id)
                if task_id not in catalog.tasks
                else JSONResponse({"error": f"task {task_id!r} has no example data on this server"}, status_code=404)
            )
        return FileResponse(example.path, media_type=example.media_type, filename=example.path.name)

    return [
        Route("/api/tasks", list_tasks),
        Route("/api/tasks/{task_id}", get_task),
        Route("/api/tasks/{task_id}/example-data", example_data),
    ]
