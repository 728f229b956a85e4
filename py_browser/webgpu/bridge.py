"""The handle on www/webgpu.js: loaded once per worker, then called synchronously by the device."""

from __future__ import annotations

from typing import Any

import js
from pyodide.ffi import JsProxy, run_sync

helper: Any = None
summary: dict[str, Any] = {}


async def load(url: str) -> dict[str, Any]:
    """Import the JavaScript helper and open the WebGPU device; returns the adapter summary."""
    global helper, summary
    if helper is None:
        module = await js.eval(f"import({js.JSON.stringify(js.location.origin + url)})")
        summary = dict((await module.init()).to_py())
        helper = module
    return summary


def wait(promise: JsProxy) -> Any:
    """Block on a JavaScript promise (JSPI); only valid below an async Python entry point."""
    return run_sync(promise)


def raise_pending_error() -> None:
    """Surface an error WebGPU reported asynchronously since the last check."""
    if (message := helper.takeError()) is not None:
        raise RuntimeError(f"WebGPU error: {message}")
