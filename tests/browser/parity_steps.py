"""Fixed-seed training steps of a small MLP and a small CNN, run by tinygrad on whatever device is default.

The browser test runs this file's source in a page worker on WebGPU and compares with CPython on CPU.
Initial weights and data come from Python's own `random`, identical on both sides.
"""

from __future__ import annotations

import random
from typing import Any

SHAPES = {
    # name: [(parameter shape), ...], input shape, classes
    "mlp": ([(16, 8), (16,), (4, 16), (4,)], (32, 8), 4),
    "cnn": ([(4, 1, 3, 3), (4,), (3, 36), (3,)], (16, 1, 8, 8), 3),
}


def _uniform(rng: random.Random, shape: tuple[int, ...], scale: float) -> list[float]:
    n = 1
    for d in shape:
        n *= d
    return [rng.uniform(-scale, scale) for _ in range(n)]


def run_steps(model: str, steps: int = 3, seed: int = 1234) -> dict[str, Any]:
    """Train `steps` SGD steps (momentum 0.9) under TinyJit on fresh batches; return losses and parameters."""
    from tinygrad import Tensor, TinyJit, nn
    from tinygrad.helpers import Context

    param_shapes, x_shape, classes = SHAPES[model]
    rng = random.Random(seed)
    params = [Tensor(_uniform(rng, s, 0.5)).reshape(s).contiguous() for s in param_shapes]
    Tensor.realize(*params)
    opt = nn.optim.SGD(params, lr=0.1, momentum=0.9)

    def forward(x: Tensor) -> Tensor:
        if model == "mlp":
            w1, b1, w2, b2 = params
            return (x.linear(w1.T, b1)).relu().linear(w2.T, b2)
        cw, cb, dw, db = params
        h = x.conv2d(cw, cb).relu().max_pool2d(2)  # 8x8 -> 6x6 -> 3x3
        return h.flatten(1).linear(dw.T, db)

    @TinyJit
    def step(x: Tensor, y: Tensor) -> Tensor:
        with Context(TRAINING=1):
            opt.zero_grad()
            loss = forward(x).sparse_categorical_crossentropy(y).backward()
            opt.step()
            return loss.realize()

    losses = []
    for _ in range(steps):  # new input buffers each step: the JIT must rebind them on replay
        x = Tensor(_uniform(rng, x_shape, 1.0)).reshape(x_shape).contiguous().realize()
        y = Tensor([rng.randrange(classes) for _ in range(x_shape[0])]).realize()
        losses.append(step(x, y).item())
    return {"loss": losses, "params": [p.flatten().tolist() for p in params]}


async def run_in_browser(steps: int) -> dict[str, Any]:
    """The browser entry point: open WebGPU, then run both models."""
    from py_browser import webgpu

    adapter = await webgpu.install()
    return {"adapter": adapter["description"], **{m: run_steps(m, steps) for m in SHAPES}}
