"""A task's initial global model, drawn in a separate process so the event loop never waits for it.

Building a model means compiling tinygrad kernels for its seeded initialisation, seconds for a large one: done on
the event loop it stalled every request, /api/health included. A spawned worker process (not a thread: tinygrad's
state is not meant to be shared between threads, and the secure rounds use it on the loop) does it instead.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from py_shared.models import build_model
from py_shared.task import TaskDefinition
from py_shared.weights import Slot, get_vector, layout, vector_to_bytes


def initial_model(task: TaskDefinition) -> tuple[list[Slot], bytes]:
    """The layout of `task`'s model and its seeded initial weights as float32 bytes (what every client draws)."""
    model = build_model(task)
    return layout(model), vector_to_bytes(get_vector(model))


class ModelBuilder:
    """One worker process, started on first use, that draws initial models for the rooms."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None

    async def build(self, task: TaskDefinition) -> tuple[list[Slot], bytes]:
        """`initial_model(task)`, computed in the worker."""
        if self.pool is None:  # spawn: forking a process that runs an event loop and threads is unsafe
            self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, initial_model, task)
        except BrokenProcessPool:  # the worker died (out of memory?): the next task gets a fresh one
            self.close()
            raise RuntimeError(f"the server could not build task {task.id!r}'s model") from None

    def close(self) -> None:
        """Stop the worker, if one was started."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
