"""The panel's "Your data" field: files picked or dropped, or the task's example data; a preview of them (first
rows, first images with their labels, or a text sample) with the examples per label; and, when they do not fit
the chosen task, why, before training can start. The files are read here, in the page, and stay on the device."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyodide.ffi import to_js
from pyscript import document, window

from py_browser import files
from py_browser.page_events import PageEvents
from py_browser.table_rows import table_row
from py_shared.data.examples import DataError
from py_shared.data.preview import DataPreview, preview
from py_shared.task import TaskDefinition


def _element(element_id: str) -> Any:
    return document.getElementById(element_id)


class DataConnection:
    """What the next run trains on; `changed` runs whenever that changes (the Train button follows it)."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self.changed = changed
        self.task: TaskDefinition | None = None
        self.example_info: dict[str, Any] | None = None  # the server's note on the task's example data
        self.example: dict[str, bytes] | None = None  # the example data, when chosen instead of files
        self.chosen: dict[str, bytes] = {}  # the picked or dropped files, read
        self.problem = ""
        self.thumbnails: list[str] = []  # object URLs of the shown images, revoked when replaced
        self.events = PageEvents()
        self.events.on("use-example", "click", self.on_use_example)
        self.events.on("data-files", "change", self.on_data_files)
        self.events.on("data-drop", "dragover", lambda e: e.preventDefault())
        self.events.on("data-drop", "drop", self.on_drop)

    @property
    def ready(self) -> bool:
        """Whether there is data, and it fits the task."""
        return (self.example is not None or bool(self.chosen)) and not self.problem

    def files(self) -> dict[str, bytes]:
        """The data to train on (name -> contents)."""
        return self.example if self.example is not None else self.chosen

    def for_task(self, task: TaskDefinition | None, example_info: dict[str, Any] | None) -> None:
        """Another task was chosen: its example data is not fetched yet, and chosen files are looked at anew."""
        self.task, self.example_info, self.example = task, example_info, None
        if self.chosen and task is not None:
            self._show(preview(task, self.chosen), _element("data-summary").textContent)
        else:
            self._show(None, "")

    async def on_use_example(self, event: Any) -> None:
        if self.task is None or (info := self.example_info) is None:
            return
        _element("data-summary").textContent = f"Downloading the example data ({info['bytes'] / 1e6:.1f} MB)…"
        try:
            example = {info["file"]: await files.fetch_bytes(f"/api/tasks/{self.task.id}/example-data")}
        except DataError as e:
            _element("data-summary").textContent = f"The example data could not be fetched: {e}"
            return
        _element("data-files").value = ""
        self.chosen, self.example = {}, example
        summary = f"Example data: {info['file']}: {info['summary']}. Source: {info['source']}."
        self._show(preview(self.task, example), summary)

    async def on_data_files(self, event: Any) -> None:
        await self._take(_element("data-files").files)

    async def on_drop(self, event: Any) -> None:
        """Files dropped on the data field."""
        event.preventDefault()
        if not _element("data-files").disabled:  # not while a run reads the data
            await self._take(event.dataTransfer.files)

    async def _take(self, picked: Any) -> None:
        self.example = None
        names = [picked.item(i).name for i in range(picked.length)]
        size = sum(picked.item(i).size for i in range(picked.length))
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        summary = f"{len(names)} file(s), {size / 1024:.1f} kB: {shown}" if names else ""
        _element("data-summary").textContent = f"{summary} · reading…" if names else ""
        self.chosen = await files.chosen_files(picked)
        self._show(preview(self.task, self.chosen) if self.task is not None and self.chosen else None, summary)

    def _show(self, seen: DataPreview | None, summary: str) -> None:
        for url in self.thumbnails:
            window.URL.revokeObjectURL(url)
        self.thumbnails = []
        self.problem = seen.problem if seen is not None else ""
        _element("data-summary").textContent = " · ".join(t for t in (summary, seen and seen.summary) if t)
        problem = _element("data-problem")
        problem.textContent = f"This data does not fit the task: {self.problem}" if self.problem else ""
        box = _element("data-preview")
        box.replaceChildren(*(self._parts(seen) if seen is not None and not self.problem else []))
        box.hidden = seen is None or bool(self.problem)
        self.changed()

    def _parts(self, seen: DataPreview) -> list[Any]:
        parts = []
        if seen.rows:
            table = document.createElement("table")
            table.append(table_row("th", seen.header), *(table_row("td", row) for row in seen.rows))
            parts.append(table)
        if seen.images:
            strip = document.createElement("div")
            strip.className = "thumbnails"
            for name, label, data in seen.images:
                figure, image, caption = (document.createElement(t) for t in ("figure", "img", "figcaption"))
                url = window.URL.createObjectURL(window.Blob.new([to_js(data)]))
                self.thumbnails.append(url)
                image.src, image.alt, caption.textContent = url, name, label
                figure.append(image, caption)
                strip.append(figure)
            parts.append(strip)
        if seen.text:
            sample = document.createElement("pre")
            sample.textContent = seen.text
            parts.append(sample)
        if seen.counts:
            counts = document.createElement("p")
            counts.className = "hint"
            counts.textContent = "Examples per label: " + " · ".join(f"{label}: {n:,}" for label, n in seen.counts)
            parts.append(counts)
        return parts
