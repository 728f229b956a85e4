"""`python -m bench.cpu_train`: PyDisco's trainer on tinygrad's CPU device beside PyTorch (CPU) on the identical
MLP and CNN, batch 64, the same data and optimizer (Adam), in the same run.

Per model and implementation, one JSON line with the steady ms/step (median after the first three steps) and
the first step's seconds (tinygrad compiles its kernels then); then the ratios. Both read the loss back every
step, as a training loop that reports progress does. PyTorch runs with its default threads and with one.
Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("DEV", "CPU")

import numpy as np

from py_shared.data.examples import Examples
from py_shared.models import build_model
from py_shared.task import CNNModel, ConvLayer, ImageData, MLPModel, ModelSpec, TaskDefinition, Training
from py_shared.training.device_data import DeviceExamples
from py_shared.training.trainer import Progress, Trainer

BATCH = 64
MODELS: dict[str, ModelSpec] = {
    "mlp": MLPModel(hidden=(128,)),
    "cnn": CNNModel(conv=(ConvLayer(channels=8), ConvLayer(channels=16)), dense=(64,)),
}


def make_data(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped data: uint8 images (count, 28, 28, 1) and labels 0-9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, size=count)


def summarise(stamps: list[float], start: float) -> dict[str, float]:
    steps = [b - a for a, b in zip([start, *stamps], stamps, strict=False)]
    return {"first_step_s": round(steps[0], 3), "ms_per_step": round(1000 * statistics.median(steps[3:]), 3)}


def run_pydisco(kind: str, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    task = TaskDefinition(
        id="bench",
        title="bench",
        data=ImageData(width=28, height=28, channels=1, labels=tuple("0123456789")),
        model=MODELS[kind],
        training=Training(epochs=1, batch_size=BATCH, learning_rate=1e-3, optimizer="adam"),
    )
    examples = Examples(images.tobytes(), "uint8", (28, 28, 1), tuple(int(v) for v in labels))
    model = build_model(task)
    stamps: list[float] = []

    def on_progress(p: Progress) -> None:  # reading the loss back is what makes each step finish here
        stamps.append(time.perf_counter())

    steps = len(labels) // BATCH
    trainer = Trainer(task, model, DeviceExamples(examples), on_progress=on_progress, reports_per_epoch=steps)
    start = time.perf_counter()
    asyncio.run(trainer.fit())
    return {"impl": "pydisco-tinygrad-cpu", **summarise(stamps, start)}


def run_torch(kind: str, images: np.ndarray, labels: np.ndarray, threads: int) -> dict[str, Any]:
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if kind == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
        )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # uint8, scaled per batch like ours
    y = torch.from_numpy(labels)
    order = torch.randperm(len(y))
    stamps, start = [], time.perf_counter()
    for i in range(len(y) // BATCH):
        idx = order[i * BATCH : (i + 1) * BATCH]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x[idx].float() / 255), y[idx])
        loss.backward()
        optimizer.step()
        loss.item()
        stamps.append(time.perf_counter())
    return {"impl": "torch-cpu", "torch": torch.__version__, "threads": threads, **summarise(stamps, start)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=64 * 40, help="training examples (steps = examples / 64)")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("error: PyTorch is missing; install the bench extra: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    images, labels = make_data(args.examples)
    thread_counts = sorted({torch.get_num_threads(), 1}, reverse=True)
    for kind in MODELS:
        rows = [run_pydisco(kind, images, labels)]
        rows += [run_torch(kind, images, labels, t) for t in thread_counts]
        for row in rows:
            print(json.dumps({"model": kind, "batch": BATCH, **row}))
        ours = rows[0]["ms_per_step"]
        for ref in rows[1:]:
            metric = f"pydisco / torch({ref['threads']} threads) ms_per_step"
            print(json.dumps({"model": kind, "metric": metric, "ratio": round(ours / ref["ms_per_step"], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
