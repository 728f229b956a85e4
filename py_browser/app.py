"""The page's application, run inside the worker: opens WebGPU, checks it computes, reports readiness."""

from __future__ import annotations

import sys
from html import escape

from pyscript import document

panel: object = None  # the UI's event handlers live as long as these references
tasks: object = None
form: object = None


def progress(text: str) -> None:
    """Show one line of progress under the status indicator."""
    document.getElementById("progress").textContent = text


def set_state(state: str, text: str, webgpu: str | None = None) -> None:
    """Set #status's data-state (booting, ready or error) and its message; tests read these attributes."""
    status = document.getElementById("status")
    if webgpu is not None:
        status.dataset.webgpu = webgpu
    status.dataset.state = state
    progress(text)


def _show_environment(rows: dict[str, str]) -> None:
    panel = document.getElementById("app")
    panel.innerHTML = "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows.items()) + "</dl>"
    panel.hidden = False


async def start() -> None:
    """Open the GPU, run one kernel through tinygrad end to end, then mark the page ready."""
    from py_browser import webgpu

    progress("Opening WebGPU…")
    try:
        adapter = await webgpu.install()
    except Exception as e:
        set_state("error", f"WebGPU could not be opened: {e}", webgpu="none")
        return
    progress("Loading tinygrad…")
    import tinygrad
    from tinygrad import Tensor

    progress(f"Compiling a test kernel on {adapter['description']}…")

    got = (Tensor([1.0, 2.0, 3.0, 4.0]) * 2 + 1).sum().item()
    if got != 24.0:
        set_state("error", f"WebGPU computed a wrong result ({got} instead of 24): this GPU cannot be used.")
        return
    _show_environment(
        {
            "GPU": adapter["description"],
            "Python": sys.version.split()[0],
            "tinygrad": getattr(tinygrad, "__version__", "0.14.0"),
        }
    )
    progress("Building the page…")
    global panel, tasks, form
    from py_browser.local_training import LocalTrainingPanel
    from py_browser.model_library import ModelLibrary
    from py_browser.task_form_view import TaskForm
    from py_browser.task_list import TaskList

    panel = LocalTrainingPanel()  # wired before "ready": a test (or a quick user) may act at once
    tasks = TaskList(panel.offer, panel.choose)

    async def created(task_id: str) -> None:
        await tasks.refresh()
        await panel.choose(task_id)

    form = TaskForm(created)
    panel.library = ModelLibrary(panel.use_saved)
    await panel.library.show()
    await tasks.refresh()
    await tasks.open_linked()
    tasks.keep_fresh()
    set_state("ready", "Ready.", webgpu=adapter["description"])
