"""The home list: the server's tasks, what each one shares and who takes part now, refreshed while the page is
open (a task created elsewhere appears without a reload); a task opens from its link, /#/task/<id>."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pyodide.ffi import create_proxy
from pyscript import document, window

from py_browser import files
from py_shared.task_badges import task_items_html

log = logging.getLogger("pydisco.page")
REFRESH_S = 5.0
LINK = re.compile(r"#/task/([a-z0-9][a-z0-9_-]{0,63})$")


def task_link(task_id: str) -> str:
    """The address that opens a task on this server."""
    return f"{window.location.origin}/#/task/{task_id}"


def share(task_id: str | None) -> None:
    """Show the chosen server task's link and its QR code, for a phone to open the same task; hide them if none."""
    box = document.getElementById("task-share")
    box.hidden = task_id is None
    if task_id is None:
        return
    link = task_link(task_id)
    image = document.getElementById("task-qr")
    image.src, image.alt = qr_code(link), f"QR code of {link}"
    anchor = document.getElementById("task-link")
    anchor.href, anchor.textContent = link, link


def qr_code(text: str) -> str:
    """A QR code of `text` as an SVG data URI."""
    import segno  # here, not at the top: its SVG writer imports urllib and email, 0.4 s of the page's boot

    return str(segno.make(text, error="m").svg_data_uri(scale=4, border=2))


class TaskList:
    """Keeps #task-list and the panel's task menu in step with the server; `offer` hands the panel the listing,
    `choose` opens one task."""

    def __init__(self, offer: Callable[[dict[str, Any]], None], choose: Callable[[str], Awaitable[None]]) -> None:
        self.offer, self.choose = offer, choose
        self._on_hash = create_proxy(lambda event: asyncio.ensure_future(self.open_linked()))
        window.addEventListener("hashchange", self._on_hash)
        self._refreshing: asyncio.Future[None] | None = None
        self._shown = ""  # the list's markup now: redrawn only when it changes

    async def refresh(self) -> None:
        """Fetch the tasks and show them."""
        listing = {t["id"]: t for t in json.loads(await files.fetch_bytes("/api/tasks"))["tasks"]}
        self.offer(listing)
        if (markup := task_items_html(listing.values())) != self._shown:
            # one call: each DOM call from the worker is a synchronous round trip to the page
            document.getElementById("task-list").innerHTML = markup
            document.getElementById("home").hidden = False
            self._shown = markup

    def keep_fresh(self) -> None:
        """Refresh every REFRESH_S seconds from now on."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(REFRESH_S)
                try:
                    await self.refresh()
                except Exception as e:  # the server is away for a moment: the list stays as it was, and retries
                    log.warning("the task list was not refreshed: %s", e)

        self._refreshing = asyncio.ensure_future(loop())

    async def open_linked(self) -> None:
        """Open the task the page's address names (/#/task/<id>), if any."""
        if (match := LINK.search(str(window.location.hash))) is not None:
            await self.choose(match.group(1))
