"""Python handlers on the page's events: each gets a proxy that lives as long as its owner, and a handler that is
a coroutine runs as a task kept referenced until it ends (or it may be collected midway)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pyodide.ffi import create_proxy
from pyscript import document


class PageEvents:
    """The handlers one part of the page registered."""

    def __init__(self) -> None:
        self.proxies: list[Any] = []
        self.running: set[asyncio.Future[None]] = set()

    def on(self, element_id: str, event: str, handler: Callable[[Any], object]) -> None:
        """Call `handler(event)` on each `event` of #element_id."""

        def run(event: Any) -> None:
            result = handler(event)
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                self.running.add(task)
                task.add_done_callback(self.running.discard)

        proxy = create_proxy(run)
        document.getElementById(element_id).addEventListener(event, proxy)
        self.proxies.append(proxy)
