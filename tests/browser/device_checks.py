"""Browser-side checks of py_browser's tinygrad WEBGPU device: compile errors, freeing, sync, batching.

Sent as source into a page worker by test_webgpu_device.py; each check returns plain data to assert on.
"""

from __future__ import annotations

import gc
from typing import Any

GOOD_WGSL = """
@group(0) @binding(0) var<uniform> INFINITY : f32;
@group(0) @binding(1) var<storage,read_write> data0: array<f32>;
@compute @workgroup_size(1) fn E_fill(@builtin(workgroup_id) gindex: vec3<u32>) {
  data0[gindex.x] = f32(gindex.x) + 0.5;
}
"""


def _elf(name: str, code: str, n_buffers: int) -> Any:
    from tinygrad.device import TinyELF
    from tinygrad.dtype import dtypes
    from tinygrad.helpers import Target

    return TinyELF(
        code.encode(), name, Target(), tuple((f"data{i}", i, dtypes.float32, (4,)) for i in range(n_buffers))
    )


def check_compile_error(dev: Any) -> str:
    """Compiling broken WGSL must fail with the kernel's name in the message."""
    try:
        dev.runtime(_elf("E_broken_kernel_42", "fn this is not wgsl {", 1))
    except Exception as e:
        return str(e)
    return ""


def check_dispatch_and_error_at_sync(dev: Any, helper: Any) -> dict[str, Any]:
    """A hand-written kernel runs; an invalid launch surfaces at synchronize(); the device keeps working."""
    from tinygrad import Tensor

    prg = dev.runtime(_elf("E_fill", GOOD_WGSL, 1))
    buf = dev.allocator.alloc(16)
    prg(buf, global_size=(4, 1, 1))
    out = memoryview(bytearray(16))
    dev.allocator._copyout(out, buf)
    filled = list(out.cast("f"))
    prg(buf, global_size=(70000, 1, 1))  # over maxComputeWorkgroupsPerDimension: a validation error
    try:
        dev.synchronize()
        error = ""
    except RuntimeError as e:
        error = str(e)
    dev.allocator.free(buf, 16)
    after = (Tensor([1.0, 2.0]) + 1).tolist()
    return {"filled": filled, "error": error, "after_error": after}


def check_buffers_freed(dev: Any, helper: Any) -> dict[str, int]:
    """Buffers tinygrad frees are destroyed in WebGPU once the allocator's cache is dropped."""
    from tinygrad.device import Buffer
    from tinygrad.dtype import dtypes

    dev.allocator.free_cache()
    gc.collect()
    before = helper.stats().buffers
    bufs = [Buffer("WEBGPU", 1000 + i, dtypes.float32).allocate() for i in range(5)]
    during = helper.stats().buffers
    del bufs
    gc.collect()
    dev.allocator.free_cache()
    return {"before": before, "during": during, "after": helper.stats().buffers}


def check_submits_per_replay(helper: Any) -> dict[str, int]:
    """A replayed TinyJit costs one submit when batched, one per kernel when not (JIT=2)."""
    from tinygrad import Tensor, TinyJit
    from tinygrad.helpers import Context

    out = {}
    for name, level in [("batched", 1), ("per_kernel", 2)]:
        with Context(JIT=level):
            w = Tensor.ones(64, 64).contiguous().realize()

            @TinyJit
            def f(x: Tensor) -> Tensor:
                hidden = (x @ w).relu().contiguous()  # noqa: B023 -- w is captured once, on purpose
                return (hidden.sum(axis=1) * 2 + 1).realize()

            for _ in range(3):
                f(Tensor.ones(8, 64).contiguous().realize())
            x = Tensor.ones(8, 64).contiguous().realize()
            before = helper.stats().submits
            result = f(x)
            out[name] = helper.stats().submits - before
            out[name + "_value"] = result.tolist()[0]
    return out


async def run_checks() -> dict[str, Any]:
    """All checks, in one worker (one Pyodide boot)."""
    from py_browser import webgpu

    await webgpu.install()
    from tinygrad import Device

    from py_browser.webgpu import bridge

    dev = Device["WEBGPU"]
    return {
        "compile_error": check_compile_error(dev),
        "dispatch": check_dispatch_and_error_at_sync(dev, bridge.helper),
        "freed": check_buffers_freed(dev, bridge.helper),
        "submits": check_submits_per_replay(bridge.helper),
    }
