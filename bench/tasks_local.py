"""`python -m bench.tasks_local`: every predefined task trained locally on its full example data with its own
settings, on CPython (tinygrad's CPU device) and, with --browser, in headless Chromium (tinygrad on WebGPU).

One JSON line per task and platform: epochs, validation accuracy (perplexity for text), seconds from reading
the data to the last epoch. These are the figures of tasks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("DEV", "CPU")

from py_cli.files import example_data, read_source, read_task
from py_shared.models import build_model
from py_shared.training.pipeline import prepare_data
from py_shared.training.trainer import Trainer

TASKS = ["titanic", "mnist", "fashion_mnist", "simple_face", "emoji", "shakespeare"]


def on_cpu(task_id: str, epochs: int) -> dict[str, Any]:
    started = time.perf_counter()
    task = read_task(task_id)
    if epochs:
        task = replace(task, training=replace(task.training, epochs=epochs))
    data = prepare_data(task, read_source(task, example_data(task)))
    history = asyncio.run(Trainer(task, build_model(task), data.train, data.validation).fit())
    last = history[-1]
    return {
        "epochs": len(history),
        "val_accuracy": last.val_accuracy,
        "val_perplexity": last.val_perplexity,
        "seconds": round(time.perf_counter() - started, 1),
    }


def in_browser(task_ids: list[str], epochs: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(task, result) for each task as soon as it is trained, each in a fresh headless Chromium."""
    from harness.chromium import chromium, wait_for_state
    from harness.pyworker import call_in_worker
    from harness.server_process import running_server

    with tempfile.TemporaryDirectory() as data, running_server(Path(data)) as url:
        for task_id in task_ids:
            with chromium() as driver:  # a fresh page per task: nothing compiled or cached carries over
                driver.get(url)
                if wait_for_state(driver, timeout=120) != "ready":
                    raise RuntimeError("the page did not become ready")
                module = Path(__file__).with_name("tasks_local_steps.py")
                yield (
                    task_id,
                    call_in_worker(driver, module, "train_task", timeout=7200, task_id=task_id, epochs=epochs),
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tasks", nargs="*", default=TASKS, metavar="TASK")
    parser.add_argument("--browser", action="store_true", help="also train in headless Chromium on WebGPU")
    parser.add_argument("--cpu", action=argparse.BooleanOptionalAction, default=True, help="train on CPython")
    parser.add_argument("--epochs", type=int, default=0, help="override every task's epochs (0: the task's own)")
    args = parser.parse_args()
    for task_id in args.tasks if args.cpu else []:
        print(
            json.dumps({"task": task_id, "platform": "cpython-tinygrad-cpu", **on_cpu(task_id, args.epochs)}),
            flush=True,
        )
    if args.browser:
        for task_id, row in in_browser(args.tasks, args.epochs):
            print(json.dumps({"task": task_id, "platform": "chromium-tinygrad-webgpu", **row}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
