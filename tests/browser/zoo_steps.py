"""The model zoo trained a few steps through the real Trainer, identically seeded, on whatever device is default.

The browser test runs this file's source in a page worker on WebGPU and compares with CPython on CPU: the
same initial weights (tinygrad's seeded generator) and the same steps must give the same weights.
"""

from __future__ import annotations

import array
import asyncio
import base64
import random
from typing import Any

# tinygrad (through py_shared) is imported inside the functions: in the browser, WebGPU must be installed first
KINDS = ("mlp", "cnn", "gpt")
ALPHABET = "abcdefgh "


def _task(kind: str) -> Any:
    from py_shared.task import (
        CNNModel,
        ConvLayer,
        GPTModel,
        ImageData,
        MLPModel,
        TabularData,
        TaskDefinition,
        TextData,
        Training,
    )

    sgd = Training(epochs=2, batch_size=8, learning_rate=0.05, optimizer="sgd", momentum=0.9)
    if kind == "mlp":
        data: Any = TabularData(feature_columns=("a", "b", "c", "d"), label_column="y", label_values=("0", "1", "2"))
        model: Any = MLPModel(hidden=(16, 8))
    elif kind == "cnn":
        data = ImageData(width=8, height=8, channels=3, labels=("a", "b"))
        model = CNNModel(conv=(ConvLayer(channels=4), ConvLayer(channels=6, kernel=1, pool=1)), dense=(8,))
    else:
        data = TextData(tokenizer="char", context_length=8, alphabet=ALPHABET)
        model = GPTModel(layers=1, heads=2, embed=16)
    return TaskDefinition(id=kind, title=kind, data=data, model=model, training=sgd)


def _data(kind: str) -> Any:
    from py_shared.data.examples import Examples
    from py_shared.data.text import CharTokenizer, tokenize
    from py_shared.training.device_data import DeviceExamples, DeviceTokens

    rng = random.Random(7)
    if kind == "gpt":
        text = "".join(rng.choice(ALPHABET) for _ in range(400))
        return DeviceTokens(tokenize(text, CharTokenizer(ALPHABET), "t", 8), 8)
    labels = tuple(rng.randrange(3 if kind == "mlp" else 2) for _ in range(32))
    if kind == "mlp":
        floats = array.array("f", [rng.uniform(-1, 1) for _ in range(32 * 4)])
        return DeviceExamples(Examples(floats.tobytes(), "float32", (4,), labels))
    pixels = bytes(rng.randrange(256) for _ in range(32 * 8 * 8 * 3))
    return DeviceExamples(Examples(pixels, "uint8", (8, 8, 3), labels))


async def train_zoo() -> dict[str, Any]:
    """Each zoo model after two epochs of SGD: its initial and final weights (base64 float32) and losses."""
    from py_shared.models import build_model
    from py_shared.training.trainer import Trainer
    from py_shared.weights import model_to_bytes

    out = {}
    for kind in KINDS:
        task = _task(kind)
        model = build_model(task)
        initial = model_to_bytes(model)
        history = await Trainer(task, model, _data(kind)).fit()
        out[kind] = {
            "initial": base64.b64encode(initial).decode(),
            "final": base64.b64encode(model_to_bytes(model)).decode(),
            "loss": [m.train_loss for m in history],
        }
    return out


async def run_in_browser() -> dict[str, Any]:
    """The browser entry point: open WebGPU, then train the zoo."""
    from py_browser import webgpu

    await webgpu.install()
    return await train_zoo()


def run_on_cpu() -> dict[str, Any]:
    return asyncio.run(train_zoo())
