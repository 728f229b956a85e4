"""The in-browser half of bench.tasks_local: one predefined task trained on its example data, in a page worker.

Sent as source into a page worker (see harness.pyworker); it is not part of the browser wheel.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any


async def train_task(task_id: str, epochs: int = 0) -> dict[str, Any]:
    """Fetch the task and its example data from the server, train with the task's settings (or `epochs`)."""
    from py_browser import webgpu

    adapter = await webgpu.install()
    from py_browser.files import fetch_bytes, to_source
    from py_shared.models import build_model
    from py_shared.task import task_from_json
    from py_shared.training.pipeline import prepare_data
    from py_shared.training.trainer import Trainer

    started = time.perf_counter()
    task = task_from_json(json.loads(await fetch_bytes(f"/api/tasks/{task_id}")))
    if epochs:
        task = replace(task, training=replace(task.training, epochs=epochs))
    listing = {t["id"]: t for t in json.loads(await fetch_bytes("/api/tasks"))["tasks"]}
    name = listing[task_id]["example_data"]["file"]
    source = await to_source(task, {name: await fetch_bytes(f"/api/tasks/{task_id}/example-data")})
    data = prepare_data(task, source)
    history = await Trainer(task, build_model(task), data.train, data.validation).fit()
    last = history[-1]
    return {
        "epochs": len(history),
        "val_accuracy": last.val_accuracy,
        "val_perplexity": last.val_perplexity,
        "seconds": round(time.perf_counter() - started, 1),
        "adapter": adapter["description"],
    }
