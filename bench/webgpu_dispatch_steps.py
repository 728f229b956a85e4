"""The in-browser half of bench.webgpu_dispatch: one JIT-captured MLP training step, timed two ways.

Sent as source into a page worker (see harness.pyworker); it is not part of the browser wheel.
"""

from __future__ import annotations

import time
from typing import Any

VARIANTS = [("per-kernel-submit", 2), ("batched-submit", 1)]  # tinygrad's JIT=2 turns graph batching off


def count_kernels(linear: Any) -> tuple[int, int]:
    """(kernels, submits) of a captured JIT: a graph call submits all its kernels at once."""
    from tinygrad.uop.ops import Ops

    kernels = submits = 0
    for call in linear.src:
        ast = call.src[0]
        if ast.op is Ops.CUSTOM_FUNCTION and ast.arg == "graph":
            kernels, submits = kernels + len(ast.src[0].src), submits + 1
        elif ast.op is Ops.PROGRAM:
            kernels, submits = kernels + 1, submits + 1
    return kernels, submits


def time_variant(jit_level: int, steps: int, batch: int, hidden: int, seed: int) -> tuple[float, int, int]:
    """(ms per step, kernels, submits per step) of an MLP 784-hidden-10 on device-resident random data."""
    from tinygrad import Device, Tensor, TinyJit, nn
    from tinygrad.helpers import Context

    with Context(JIT=jit_level):
        Tensor.manual_seed(seed)
        l1, l2 = nn.Linear(784, hidden), nn.Linear(hidden, 10)
        opt = nn.optim.SGD([l1.weight, l1.bias, l2.weight, l2.bias], lr=0.01)
        x, y = Tensor.rand(1024, 784).realize(), Tensor.randint(1024, high=10).realize()
        Tensor.realize(*opt.params)

        @TinyJit
        def step() -> Tensor:
            with Context(TRAINING=1):
                idx = Tensor.randint(batch, high=1024)  # sampled on the device, inside the JIT
                opt.zero_grad()
                loss = l2(l1(x[idx]).relu()).sparse_categorical_crossentropy(y[idx]).backward()
                opt.step()
                return loss.realize()

        for _ in range(3):  # run, capture, first replay
            step()
        Device["WEBGPU"].synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        Device["WEBGPU"].synchronize()
        ms = (time.perf_counter() - start) * 1000 / steps
        assert step.captured is not None
        return (ms, *count_kernels(step.captured.linear))


async def measure(steps: int, batch: int, hidden: int, seed: int = 0) -> list[dict[str, Any]]:
    """One result row per variant, each from a fresh model with the same seed."""
    from py_browser import webgpu

    adapter = await webgpu.install()
    rows = []
    for variant, jit_level in VARIANTS:
        ms, kernels, submits = time_variant(jit_level, steps, batch, hidden, seed)
        rows.append(
            {
                "variant": variant,
                "kernels": kernels,
                "submits_per_step": submits,
                "ms_per_step": round(ms, 3),
                "adapter": adapter["description"],
                "batch": batch,
                "hidden": hidden,
            }
        )
    return rows
