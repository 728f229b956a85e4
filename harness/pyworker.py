"""Run Python code in a fresh PyScript worker of the loaded PyDisco page and return its JSON result.

The worker gets the page's own config (our Pyodide, our wheels), so the code can
`await py_browser.webgpu.install()` and use tinygrad on WebGPU. Code hands back a result by calling
`report(obj)`; an exception comes back as WorkerError with the browser-side traceback.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

from selenium import webdriver

# Top-level await is allowed: PyScript runs worker code asynchronously.
RUNNER = """
import json as _json, traceback as _traceback
from pyscript import window as _window

def report(obj):
    _window.__pydiscoHarness = _json.dumps(dict(ok=True, result=obj))

try:
{body}
except BaseException:
    _window.__pydiscoHarness = _json.dumps(dict(ok=False, error=_traceback.format_exc()))
"""

START = """
const code = arguments[0];
window.__pydiscoHarness = undefined;
const url = URL.createObjectURL(new Blob([code], { type: "text/x-python" }));
const script = document.createElement("script");
script.type = "py";
script.setAttribute("worker", "");
script.src = url;
script.setAttribute("config", JSON.stringify(window.pydisco.config));
document.body.append(script);
"""


class WorkerError(RuntimeError):
    """The Python code raised in the browser; the message carries its traceback."""


def run_python(driver: webdriver.Chrome, body: str, timeout: float = 300, definitions: str = "") -> Any:
    """Run `body` in a new worker after `definitions` (module source); return what it passed to report()."""
    if not driver.execute_script("return !!(window.pydisco && window.pydisco.config)"):
        raise RuntimeError("the PyDisco page is not loaded and ready in this driver")
    code = definitions + RUNNER.replace("{body}", textwrap.indent(textwrap.dedent(body), "    "))
    driver.execute_script(START, code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = driver.execute_script("return window.__pydiscoHarness")
        if raw:
            outcome = json.loads(raw)
            if not outcome["ok"]:
                raise WorkerError(outcome["error"])
            return outcome["result"]
        time.sleep(0.2)
    raise TimeoutError(f"the browser worker gave no result within {timeout:.0f} s")


def call_in_worker(driver: webdriver.Chrome, module: Path, function: str, timeout: float = 300, **kwargs: Any) -> Any:
    """Run `await function(**kwargs)`, defined in the source file `module`, in a worker; return its result.

    The file is an ordinary module (importable on CPython too); it is sent as source, not installed.
    """
    body = f"report(await {function}(**_json.loads({json.dumps(json.dumps(kwargs))})))"
    return run_python(driver, body, timeout=timeout, definitions=module.read_text() + "\n")
