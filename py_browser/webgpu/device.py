"""WebGpuDevice: tinygrad's Compiled device on the browser's WebGPU (replaces tinygrad.runtime.ops_webgpu)."""

from __future__ import annotations

import time
from typing import Any

from tinygrad.device import BufferSpec, Compiled, LRUAllocator, Program, TinyELF
from tinygrad.renderer.wgsl import WGSLRenderer

from py_browser.webgpu import bridge
from py_browser.webgpu.graph import WebGpuGraph


class WebGpuProgram(Program["WebGpuDevice"]):
    """One compiled kernel: a cached compute pipeline with an explicit bind-group layout."""

    def __init__(self, dev: WebGpuDevice, obj: TinyELF) -> None:
        self.dev, self.name = dev, obj.name
        # the signature lists buffers first, then symbolic variables (shape ())
        self.n_uniform = sum(1 for *_, shape in obj.signature if shape == ())
        self.n_storage = len(obj.signature) - self.n_uniform
        self.handle = bridge.wait(bridge.helper.compile(obj.name, obj.lib.decode(), self.n_storage, self.n_uniform))

    def __call__(
        self,
        *bufs: int,
        global_size: tuple[int, ...] = (1, 1, 1),
        local_size: tuple[int, ...] | None = (1, 1, 1),
        vals: tuple[int | None, ...] = (),
        wait: bool = False,
        **kw: Any,
    ) -> float | None:
        start = time.perf_counter() if wait else 0.0
        bridge.helper.dispatch(self.handle, *global_size, *bufs, *vals)
        if wait:
            self.dev.synchronize()
            return time.perf_counter() - start
        return None

    def __del__(self) -> None:
        if bridge.helper is not None and hasattr(self, "handle"):
            bridge.helper.releasePipeline(self.handle)


class WebGpuAllocator(LRUAllocator["WebGpuDevice"]):
    """GPU buffers as integer handles into the helper's table; freed buffers are cached for reuse."""

    def _alloc(self, size: int, options: BufferSpec) -> int:
        return int(bridge.helper.alloc(size))

    def _free(self, opaque: int, options: BufferSpec) -> None:
        bridge.helper.free(opaque)

    def _copyin(self, dest: int, src: memoryview) -> None:
        if src.nbytes % 4:  # writeBuffer needs a multiple of 4 bytes
            padded = bytearray(-(-src.nbytes // 4) * 4)
            padded[: src.nbytes] = src.cast("B")
            src = memoryview(padded)
        bridge.helper.write(dest, src.cast("B"))

    def _copyout(self, dest: memoryview, src: int) -> None:
        data = bridge.wait(bridge.helper.read(src, dest.nbytes))
        bridge.raise_pending_error()
        data.assign_to(dest.cast("B"))

    def _transfer(self, dest: int, src: int, sz: int, src_dev: Any, dest_dev: Any) -> None:
        bridge.helper.copy(dest, src, sz)


class WebGpuDevice(Compiled):
    """The device tinygrad opens for DEV=WEBGPU; the helper must already be loaded (see install())."""

    def __init__(self, device: str) -> None:
        if bridge.helper is None:
            raise RuntimeError("WebGPU is not initialised: call `await py_browser.webgpu.install()` first")
        arch = "shader-f16" if "shader-f16" in bridge.summary.get("features", []) else None
        super().__init__(device, WebGpuAllocator(self), [WGSLRenderer], WebGpuProgram, graph=WebGpuGraph, arch=arch)

    def synchronize(self) -> None:
        bridge.wait(bridge.helper.sync())
        bridge.raise_pending_error()
