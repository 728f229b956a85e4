"""The in-browser half of bench.browser_train: PyDisco's trainer on WebGPU, timed per step.

Sent as source into a page worker (see harness.pyworker); it is not part of the browser wheel.
"""

from __future__ import annotations

import base64
import statistics
import time
from typing import Any


async def measure(images_b64: str, labels: list[int], batch: int) -> dict[str, Any]:
    """Train the MNIST CNN one epoch on the given uint8 28x28 images; first-step seconds and steady ms/step."""
    from py_browser import webgpu

    adapter = await webgpu.install()
    from py_shared.data.examples import Examples
    from py_shared.models import build_model
    from py_shared.task import CNNModel, ConvLayer, ImageData, TaskDefinition, Training
    from py_shared.training.device_data import DeviceExamples
    from py_shared.training.trainer import Progress, Trainer

    task = TaskDefinition(
        id="bench",
        title="bench",
        data=ImageData(width=28, height=28, channels=1, labels=tuple("0123456789")),
        model=CNNModel(conv=(ConvLayer(channels=8), ConvLayer(channels=16)), dense=(64,)),
        training=Training(epochs=1, batch_size=batch, learning_rate=1e-3, optimizer="adam"),
    )
    examples = Examples(base64.b64decode(images_b64), "uint8", (28, 28, 1), tuple(labels))
    stamps: list[float] = []

    def on_progress(p: Progress) -> None:  # the loss is read back every step, as TF.js's trainOnBatch does
        stamps.append(time.perf_counter())

    steps = len(labels) // batch
    trainer = Trainer(
        task, build_model(task), DeviceExamples(examples), on_progress=on_progress, reports_per_epoch=steps
    )
    start = time.perf_counter()
    await trainer.fit()
    durations = [b - a for a, b in zip([start, *stamps], stamps, strict=False)]
    ms = 1000 * statistics.median(durations[3:])
    return {
        "impl": "pydisco-tinygrad-webgpu",
        "adapter": adapter["description"],
        "first_step_s": round(durations[0], 3),
        "ms_per_step": round(ms, 2),
        "samples_per_s": round(batch * 1000 / ms, 1),
    }
