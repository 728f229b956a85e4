"""WebGpuGraph: replays a captured TinyJit as one command encoder, one compute pass and one submit."""

from __future__ import annotations

import time
from typing import cast

from pyodide.ffi import to_js
from tinygrad.device import Buffer
from tinygrad.engine.jit import GraphRunner
from tinygrad.uop.ops import UOp

from py_browser.webgpu import bridge

# runBatch's update slots for the three launch dimensions (see www/webgpu.js)
DIM_SLOT = 100


class WebGpuGraph(GraphRunner):
    """A batch of kernels encoded once in JavaScript; a replay sends only what changed since capture."""

    def __init__(self, linear: UOp, input_uops: tuple[UOp, ...] = ()) -> None:
        super().__init__(linear, input_uops)
        kernels: list[list[int]] = []
        self.n_storage: list[int] = []
        # per kernel: (storage slot, JIT input index) for the buffers that are new on every call
        self.input_slots: list[tuple[int, list[tuple[int, int]]]] = []
        for j, ((_, ast, bufs, device_vars), runtime, replace) in enumerate(
            zip(self.calls, self.runtimes, self.uop_replace, strict=True)
        ):
            assert runtime is not None  # a graph batches compiled kernels only, each with its program
            info = ast.arg
            global_size, _ = info.launch_dims({**{v: 0 for v in self.vars}, **device_vars})
            values = [device_vars.get(v.expr, 0) for v in info.vars]
            kernels.append([runtime.handle, *global_size, *(bufs[i]._buf for i in info.globals), *values])
            self.n_storage.append(len(info.globals))
            if replace:
                self.input_slots.append((j, [(info.globals.index(pos), iidx) for pos, iidx in replace]))
        self.handle = bridge.helper.createBatch(to_js(kernels))

    def __call__(self, input_uops: tuple[UOp, ...], var_vals: dict[str, int], wait: bool = False) -> float | None:
        updates: list[int] = []
        for j, slots in self.input_slots:
            for slot, iidx in slots:
                # the JIT's inputs on this one device: single buffers, never a MultiBuffer
                updates += [j, slot, cast(Buffer, input_uops[iidx].buffer)._buf]
        for j, i, value in self.updated_vars(var_vals):
            updates += [j, self.n_storage[j] + i, value]
        for j, global_dims, _ in self.updated_launch_dims(var_vals):
            for axis, size in enumerate(global_dims):
                updates += [j, DIM_SLOT + axis, int(size)]
        start = time.perf_counter() if wait else 0.0
        bridge.helper.runBatch(self.handle, *updates)
        if wait:
            bridge.wait(bridge.helper.sync())
            return time.perf_counter() - start
        return None

    def __del__(self) -> None:
        if bridge.helper is not None and hasattr(self, "handle"):
            bridge.helper.releaseBatch(self.handle)
