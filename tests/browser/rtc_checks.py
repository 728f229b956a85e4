"""Runs in a page worker (sent as source): two BrowserRtcLinks in one page, connected to each other through
in-memory signaling queues, carry frames whole both ways; a chunk that is not PyDisco's ends the link with a
reason; closing releases every connection on the main thread."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time


async def run_rtc_checks(size: int) -> dict[str, object]:
    from pyodide.ffi import to_js
    from pyscript import window

    from py_browser.rtc_link import open_link
    from py_shared.protocol.transport import ConnectionClosed

    to_a: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    to_b: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def forward(queue: asyncio.Queue[tuple[str, str]]):  # type: ignore[no-untyped-def]
        async def send_signal(what: str, data: str) -> None:
            await queue.put((what, data))

        return send_signal

    started = time.perf_counter()
    a, b = await asyncio.gather(
        open_link("b", True, forward(to_b), to_a, timeout_s=20),
        open_link("a", False, forward(to_a), to_b, timeout_s=20),
    )
    opened_s = time.perf_counter() - started
    frame = os.urandom(size)
    started = time.perf_counter()
    _, there = await asyncio.gather(a.send(frame), b.receive())
    transfer_s = time.perf_counter() - started
    _, back = await asyncio.gather(b.send(frame[::-1]), a.receive())
    open_links = int(window.pydiscoLinks.count())
    window.pydiscoLinks.send(a._handle, to_js(b"not a chunk"))  # straight onto the channel, past the chunker
    try:
        await asyncio.wait_for(b.receive(), 20)
        refused = ""
    except ConnectionClosed as e:
        refused = str(e)
    await a.close()
    await b.close()
    return {
        "whole": hashlib.sha256(there).hexdigest() == hashlib.sha256(frame).hexdigest() and back == frame[::-1],
        "opened_s": opened_s,
        "transfer_s": transfer_s,
        "open_links": open_links,
        "refused": refused,
        "left_open": int(window.pydiscoLinks.count()),
    }
