"""`python -m bench.page_boot`: seconds from navigation to #status[data-state=ready] in headless Chromium.

Measures a cold boot (fresh browser profile) and a warm one (reload, vendor files cached), beside a bare
`loadPyodide()` from the same server, cold and warm too, as the reference. Prints one JSON line per
measurement and the ratios of PyDisco's boots to bare Pyodide's.

Then a phone on a slow network: a relay in front of the server (SlowLink) delivers 10 Mbit/s, shared by every
connection, 20 ms each way (Chrome's own network emulation does not slow the page's workers, which fetch
Pyodide and the wheels). A first visit with a fresh profile and a repeat visit in the same browser; for each, the
time to ready and the bytes the server sent (response bodies, summed from its log). Goal: a repeat visit
downloads under 1 % of the first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from selenium import webdriver

from harness.chromium import chromium, wait_for_state
from harness.server_process import ROOT, running_server

BARE_PYODIDE = """
const [url, done] = [arguments[0], arguments[arguments.length - 1]];
const start = performance.now();
import(url).then((m) => m.loadPyodide())
  .then(() => done((performance.now() - start) / 1000), () => done(-1));
"""


def time_to_ready(driver: webdriver.Chrome, url: str) -> float:
    """Navigate (or reload) and wait for the ready state; seconds elapsed."""
    start = time.monotonic()
    driver.get(url)
    if (state := wait_for_state(driver, timeout=120)) != "ready":
        raise RuntimeError(f"the page ended in state {state!r}")
    return time.monotonic() - start


def bare_pyodide(driver: webdriver.Chrome, url: str) -> float:
    """Seconds for loadPyodide() alone, started from a same-origin page that loads nothing else."""
    runtime = json.loads((ROOT / "www" / "dist" / "runtime.json").read_text())
    driver.get(url + "/api/health")
    driver.set_script_timeout(120)
    seconds = float(driver.execute_async_script(BARE_PYODIDE, url + runtime["pyodide"]))
    if seconds < 0:
        raise RuntimeError("loadPyodide() failed")
    return seconds


class SlowLink:
    """A TCP relay on its own thread and event loop: `rate` bytes/s downstream over all connections together,
    `delay` seconds each way."""

    def __init__(self, upstream_port: int, rate: float = 10e6 / 8, delay: float = 0.02) -> None:
        self.upstream_port, self.rate, self.delay = upstream_port, rate, delay
        self.free_at = 0.0  # when the shared downstream link can take the next byte
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = int(server.sockets[0].getsockname()[1])
        self.ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, paced: bool) -> None:
            while data := await src.read(16384):
                await asyncio.sleep(self.delay)
                if paced:
                    now = self.loop.time()
                    self.free_at = max(now, self.free_at) + len(data) / self.rate
                    await asyncio.sleep(self.free_at - now)
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True), return_exceptions=True)


def bytes_sent(log: Path, since: int) -> tuple[int, int]:
    """Body bytes the server logged after line `since`, and the log's line count now."""
    lines = log.read_text().splitlines()
    sent = sum(int(m.group(1)) for line in lines[since:] if (m := re.search(r" (\d+)B$", line)))
    return sent, len(lines)


def visits(url: str, log: Path) -> list[dict[str, float]]:
    """A first and a repeat visit through SlowLink: seconds to ready and bytes downloaded."""
    out = []
    url = f"http://127.0.0.1:{SlowLink(int(url.rsplit(':', 1)[1])).port}"
    with chromium() as driver:
        _, mark = bytes_sent(log, 0)
        for _ in ("first", "repeat"):
            driver.get("about:blank")  # a new visit, not a reload: the cache decides what is fetched
            seconds = time_to_ready(driver, url + "/")
            time.sleep(1)  # the last log lines
            sent, mark = bytes_sent(log, mark)
            out.append({"seconds": seconds, "bytes": sent})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold, warm, bare, bare_warm, slow = [], [], [], [], []
    with tempfile.TemporaryDirectory() as data:
        log = Path(data) / "server.log"
        with running_server(Path(data), log_path=log) as url:
            for _ in range(args.runs):
                with chromium() as driver:
                    bare.append(bare_pyodide(driver, url))
                    bare_warm.append(bare_pyodide(driver, url))
                with chromium() as driver:
                    cold.append(time_to_ready(driver, url + "/"))
                    warm.append(time_to_ready(driver, url + "/"))
                slow.append(visits(url, log))
    rows = [("bare-loadPyodide-cold", bare), ("bare-loadPyodide-warm", bare_warm), ("pydisco-cold", cold),
            ("pydisco-warm", warm)]  # fmt: skip
    for name, values in rows:
        runs = [round(v, 2) for v in values]
        print(json.dumps({"measure": name, "median_s": round(statistics.median(values), 2), "runs": runs}))
    for name, ours, reference in (("cold", cold, bare), ("warm", warm, bare_warm)):
        ratio = statistics.median(ours) / statistics.median(reference)
        print(
            json.dumps({"metric": f"pydisco-{name} / bare-loadPyodide-{name}", "ratio": round(ratio, 2), "goal": 1.3})
        )
    for i, name in enumerate(("first-visit-10mbit", "repeat-visit-10mbit")):
        seconds = [round(v[i]["seconds"], 2) for v in slow]
        sent = [int(v[i]["bytes"]) for v in slow]
        print(json.dumps({"measure": name, "median_s": statistics.median(seconds), "runs": seconds,
                          "median_bytes": statistics.median(sent), "bytes": sent}))  # fmt: skip
    share = statistics.median(v[1]["bytes"] / v[0]["bytes"] for v in slow)
    print(json.dumps({"metric": "repeat-visit bytes / first-visit bytes", "ratio": round(share, 5), "goal": 0.01}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
