"""`python -m bench.page_boot`: seconds from navigation to #status[data-state=ready] in headless Chromium.

Measures a cold boot (fresh browser profile) and a warm one (reload, vendor files cached), beside a bare
`loadPyodide()` from the same server in the same browser as the reference. Prints one JSON line per
measurement and the ratio of PyDisco's cold boot to bare Pyodide.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold, warm, bare = [], [], []
    with tempfile.TemporaryDirectory() as data, running_server(Path(data)) as url:
        for _ in range(args.runs):
            with chromium() as driver:
                bare.append(bare_pyodide(driver, url))
            with chromium() as driver:
                cold.append(time_to_ready(driver, url + "/"))
                warm.append(time_to_ready(driver, url + "/"))
    rows = [("bare-loadPyodide", bare), ("pydisco-cold", cold), ("pydisco-warm", warm)]
    for name, values in rows:
        runs = [round(v, 2) for v in values]
        print(json.dumps({"measure": name, "median_s": round(statistics.median(values), 2), "runs": runs}))
    ratio = statistics.median(cold) / statistics.median(bare)
    print(json.dumps({"metric": "pydisco-cold / bare-loadPyodide", "ratio": round(ratio, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
