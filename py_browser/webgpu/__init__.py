"""tinygrad's WEBGPU device for Pyodide, backed by the browser's WebGPU through www/webgpu.js.

tinygrad's own ops_webgpu drives Dawn through ctypes, which a browser does not have. `install()` puts our
device module in its place before tinygrad first opens the device. The device keeps the name WEBGPU: tinygrad
keys its 8-buffers-per-kernel cap and its no-buffer-views rule on that name.
"""

from __future__ import annotations

import os
import sys
from typing import Any

HELPER_URL = "/www/webgpu.js"


async def install() -> dict[str, Any]:
    """Open the browser's WebGPU device and make it tinygrad's default; returns the adapter summary."""
    if "tinygrad" in sys.modules and "tinygrad.runtime.ops_webgpu" not in sys.modules:
        # tinygrad reads DEV and PARALLEL once, on import.
        raise RuntimeError("py_browser.webgpu.install() must run before tinygrad is imported")
    os.environ["DEV"] = "WEBGPU"
    os.environ["PARALLEL"] = "0"  # Pyodide has no _multiprocessing
    os.environ.setdefault("JIT_BATCH_SIZE", "0")  # one batch per TinyJit: one submit per step

    from py_browser.webgpu import bridge

    summary = await bridge.load(HELPER_URL)
    from py_browser.webgpu import device

    sys.modules["tinygrad.runtime.ops_webgpu"] = device
    return summary
