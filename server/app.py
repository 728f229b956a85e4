"""The Starlette application: the page, its static files and the JSON API."""

from __future__ import annotations

import contextlib
import mimetypes
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from py_shared import __version__
from server.federation.endpoint import Federation, Limits
from server.home_page import render_index
from server.middleware import HeadersAndLog
from server.store import Store
from server.task_catalog import load_catalog
from server.tasks_api import summary, task_routes

ROOT = Path(__file__).resolve().parent.parent

# The browser refuses modules and wasm served with the wrong type; the OS mime table often lacks these.
for mime, ext in [
    ("text/javascript", ".mjs"),
    ("text/javascript", ".js"),
    ("application/wasm", ".wasm"),
    ("application/zip", ".whl"),
    ("text/x-python", ".py"),
    ("application/json", ".json"),
    ("application/json", ".map"),
]:
    mimetypes.add_type(mime, ext)


def _rss_bytes() -> int | None:
    """This process's resident memory (Linux), for whoever watches a small VPS."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return int(line.split()[1]) * 1024 if line else None


def create_app(
    root: Path = ROOT, data_dir: Path = ROOT / "data", admin_token: str = "", limits: Limits | None = None
) -> HeadersAndLog:
    """Build the ASGI app serving `root`'s index.html and www/, with state kept under `data_dir`."""
    started = time.monotonic()

    async def index(request: Request) -> HTMLResponse:
        listing = [summary(catalog, task_id, federation.online) for task_id in catalog.tasks]
        return HTMLResponse(render_index((root / "index.html").read_text(), listing))

    async def health(request: Request) -> JSONResponse:
        uptime = round(time.monotonic() - started, 3)
        return JSONResponse({"status": "ok", "version": __version__, "uptime_s": uptime, "rss_bytes": _rss_bytes()})

    async def unknown_api(request: Request) -> JSONResponse:
        return JSONResponse({"error": f"no API endpoint {request.url.path}"}, status_code=404)

    catalog = load_catalog(root / "tasks" / "definitions", root / "tasks" / "examples")
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir)
    for stored in store.created_tasks():
        catalog.tasks[stored.task.id] = stored.task
        if stored.join_token:
            catalog.join_tokens[stored.task.id] = stored.join_token
    federation = Federation(catalog, store, limits or Limits())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        federation.close()

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/", index),
            Route("/index.html", index),
            Route("/api/health", health),
            *task_routes(catalog, store, admin_token, federation.online, federation.builder.build),
            WebSocketRoute("/api/tasks/{task_id}/federated", federation.federated_endpoint),
            WebSocketRoute("/api/tasks/{task_id}/decentralized", federation.decentralized_endpoint),
            Route("/api/tasks/{task_id}/model", federation.model_file),
            Route("/api/{rest:path}", unknown_api, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            Mount("/www", StaticFiles(directory=root / "www", follow_symlink=False), name="www"),
        ],
    )
    return HeadersAndLog(app)
