"""ASGI middleware: cross-origin isolation and cache headers on every response, one log line per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Pyodide's workers share memory with the page only when it is cross-origin isolated.
ISOLATION_HEADERS = [
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-embedder-policy", b"require-corp"),
]
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"

log = logging.getLogger("pydisco.http")


def cache_control(path: str) -> bytes:
    """Versioned vendor files never change under their name; everything else is revalidated on each load."""
    return IMMUTABLE if path.startswith("/www/vendor/") else REVALIDATE


class HeadersAndLog:
    """Adds the isolation and cache headers to every HTTP response and logs it in one line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status, sent = time.perf_counter(), 0, 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers += [*ISOLATION_HEADERS, (b"cache-control", cache_control(scope["path"]))]
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            ms = (time.perf_counter() - start) * 1000
            client = scope.get("client") or ("-", 0)
            # the body's bytes: what each visit costs a phone's data plan (bench.page_boot adds them up)
            log.info("%s %s %s %d %.1fms %dB", client[0], scope["method"], scope["path"], status or 500, ms, sent)
