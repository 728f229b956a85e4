"""The model library: every model trained on this page is kept in the browser's IndexedDB (with its task, date
and metrics), survives reloads, and can be used again (to test, predict, or continue training), exported as a
.safetensors file with its task's JSON, imported back from that pair, or deleted. Nothing of it leaves the
device: IndexedDB is this origin's storage in this browser."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

import js
from pyodide.ffi import JsException, create_proxy, to_js
from pyscript import document

from py_browser import files
from py_browser.page_events import PageEvents
from py_shared.data.examples import DataError
from py_shared.data.tabular import NumericStats
from py_shared.safetensors_file import decode
from py_shared.task import TaskDefinition, task_to_json
from py_shared.training.model_card import read_exported_pair, read_model_card

DATABASE, STORE, VERSION = "pydisco", "models", 1


class LibraryError(Exception):
    """The browser's storage refused (no IndexedDB in a private window, the quota is full)."""


STORAGE_ERRORS = (LibraryError, JsException)  # IndexedDB may also throw at once (an opaque origin, say)


@dataclass(frozen=True)
class SavedModel:
    """One model of the library: what the list shows, and the safetensors file (its metadata holds the task and
    statistics), left in JavaScript until it is used: listing a long library copies no model into Python."""

    key: int
    title: str
    saved: str  # when, in the browser's local time
    metrics: str
    stored: Any  # the file, a JavaScript Uint8Array

    def file(self) -> bytes:
        """The model's safetensors file."""
        return bytes(self.stored.to_bytes())


async def _settled(request: Any) -> Any:
    """The result of an IndexedDB request, once it succeeds; LibraryError when it fails."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def succeeded(event: Any) -> None:
        if not future.done():
            future.set_result(request.result)

    def failed(event: Any) -> None:
        if not future.done():
            future.set_exception(LibraryError(str(request.error.message if request.error else "refused")))

    handlers = [create_proxy(succeeded), create_proxy(failed)]
    request.onsuccess, request.onerror = handlers
    try:
        return await future
    finally:
        for handler in handlers:
            handler.destroy()


class ModelStore:
    """The library's IndexedDB object store: one record per model, keyed by an increasing number."""

    def __init__(self) -> None:
        self.database: Any = None

    async def _store(self, mode: str) -> Any:
        if self.database is None:
            if not hasattr(js, "indexedDB") or js.indexedDB is None:
                raise LibraryError("this browser keeps no data for pages (IndexedDB is off)")
            request = js.indexedDB.open(DATABASE, VERSION)
            options = to_js({"keyPath": "key", "autoIncrement": True}, dict_converter=js.Object.fromEntries)
            upgrade = create_proxy(lambda event: request.result.createObjectStore(STORE, options))
            request.onupgradeneeded = upgrade
            try:
                self.database = await _settled(request)
            finally:
                upgrade.destroy()
        return self.database.transaction(STORE, mode).objectStore(STORE)

    async def add(self, task: TaskDefinition, metrics: str, model: bytes) -> int:
        """Keep a model; its key."""
        record = {"title": task.title, "saved": str(js.Date.new().toLocaleString()),
                  "metrics": metrics, "model": to_js(model)}  # fmt: skip
        store = await self._store("readwrite")
        return int(await _settled(store.add(to_js(record, dict_converter=js.Object.fromEntries))))

    async def all(self) -> list[SavedModel]:
        """Every kept model, the latest first."""
        records = await _settled((await self._store("readonly")).getAll())
        models = [SavedModel(int(r.key), str(r.title), str(r.saved), str(r.metrics), r.model) for r in records]
        return sorted(models, key=lambda m: -m.key)

    async def delete(self, key: int) -> None:
        """Forget a model."""
        await _settled((await self._store("readwrite")).delete(key))


Use = Callable[[TaskDefinition, bytes, NumericStats | None], None]


def _item_html(m: SavedModel) -> str:
    buttons = "".join(
        f'<button type="button" data-action="{action}" data-model="{m.key}">{label}</button>'
        for action, label in (("use", "Use"), ("export", "Export"), ("delete", "Delete"))
    )
    return f'<li data-model="{m.key}"><span>{escape(f"{m.title} · {m.saved} · {m.metrics}")}</span>{buttons}</li>'


def model_card(model: bytes) -> tuple[TaskDefinition, NumericStats | None]:
    """The task and statistics a library model carries; ValueError when it cannot be used."""
    return read_model_card(decode(model)[1])


class ModelLibrary:
    """Wires #library: the list, its Use/Export/Delete buttons, and Import; `use` hands a model to the panels."""

    def __init__(self, use: Use) -> None:
        self.use = use
        self.store = ModelStore()
        self.models: dict[int, SavedModel] = {}
        self.events = PageEvents()
        self.events.on("library-list", "click", self.on_click)
        self.events.on("library-import", "change", self.on_import)

    def message(self, text: str, state: str = "idle") -> None:
        element = document.getElementById("library-message")
        element.textContent, element.dataset.state = text, state

    async def show(self) -> None:
        """Read the library and list it."""
        try:
            self.models = {m.key: m for m in await self.store.all()}
        except STORAGE_ERRORS as e:
            self.message(f"Models cannot be kept in this browser: {e}", "error")
            return
        # one innerHTML: each DOM call from the worker is a synchronous round trip to the page
        document.getElementById("library-list").innerHTML = "".join(map(_item_html, self.models.values()))
        document.getElementById("library-empty").hidden = bool(self.models)
        document.getElementById("library").hidden = False

    async def keep(self, task: TaskDefinition, metrics: str, model: bytes) -> None:
        """Add a trained model (its file's metadata holds its task) and list it."""
        try:
            await self.store.add(task, metrics, model)
        except STORAGE_ERRORS as e:
            self.message(f"The model could not be kept in this browser: {e}", "error")
            return
        await self.show()
        self.message(f"Kept “{task.title}” in your models.", "done")

    async def on_click(self, event: Any) -> None:
        """A Use, Export or Delete button of the list."""
        action, key = event.target.dataset.action, event.target.dataset.model
        if not action or not key or (m := self.models.get(int(key))) is None:
            return
        if action == "delete":
            try:
                await self.store.delete(m.key)
            except STORAGE_ERRORS as e:
                self.message(f"“{m.title}” could not be deleted from this browser: {e}", "error")
                return
            await self.show()
            self.message(f"Deleted “{m.title}” ({m.saved}).")
            return
        model = m.file()
        try:
            task, stats = model_card(model)
        except ValueError as e:
            self.message(f"This model cannot be used: {e}", "error")
            return
        if action == "export":
            files.save_as(f"{task.id}.safetensors", model)
            files.save_as(f"{task.id}.json", json.dumps(task_to_json(task), indent=2), "application/json")
            self.message(f"Exported {task.id}.safetensors and {task.id}.json.", "done")
        else:
            self.use(task, model, stats)
            self.message(f"Using “{m.title}” ({m.saved}): test it, predict, or train on from it.", "done")

    async def on_import(self, event: Any) -> None:
        """A .safetensors file and its task's .json, chosen together, join the library."""
        chosen = await files.chosen_files(document.getElementById("library-import").files)
        try:
            task, model = read_exported_pair(chosen)
        except (DataError, ValueError) as e:
            self.message(f"Cannot import: {e}", "error")
            return
        await self.keep(task, f"imported {time.strftime('%Y-%m-%d')}", model)
