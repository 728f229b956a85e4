"""The "Create a task" panel: the form py_shared/task_form.py describes, drawn on the page; a sample CSV dropped in
or picked (read here, never uploaded) gives a tabular task's columns, sample images an image task's size,
channels and labels, a sample text its characters; the ε the privacy settings give is shown as the creator
types; each problem appears next to its field, and only a valid task is sent to the server."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import js
from pyodide.ffi import to_js
from pyscript import document, window

from py_browser import files
from py_browser.page_events import PageEvents
from py_browser.table_rows import table_row
from py_browser.task_form_markup import PREFIX, form_html, shown
from py_shared.data.examples import DataError
from py_shared.data.sample_profile import image_profile, text_profile
from py_shared.task import task_to_json
from py_shared.task_form import (
    ADMIN_TOKEN,
    FIELDS,
    ROLES,
    CsvSample,
    FormProblems,
    Role,
    build_task,
    field_of,
    planned_epsilon,
    read_sample,
)


def _element(name: str) -> Any:
    return document.getElementById(PREFIX + name)


def _make(tag: str, **attributes: str) -> Any:
    element = document.createElement(tag)
    for key, value in attributes.items():
        element.setAttribute(key, value)
    return element


class TaskForm:
    """Wires #create; `created(task_id)` runs once the server took a task (the list refreshes, the task opens)."""

    def __init__(self, created: Callable[[str], Awaitable[None]]) -> None:
        self.created = created
        self.sample: CsvSample | None = None
        self.problems: set[str] = set()  # the fields showing a problem
        self.events = PageEvents()
        self.form = document.getElementById("task-form")
        self.form.innerHTML = form_html()  # one round trip to the page, not hundreds
        self.events.on("task-form", "input", lambda e: self._update())
        self.events.on("task-form", "change", lambda e: self._update())
        self.events.on(PREFIX + "sample", "change", self.on_sample)
        self.events.on(PREFIX + "drop", "dragover", lambda e: e.preventDefault())
        self.events.on(PREFIX + "drop", "drop", self.on_drop)
        self.events.on(PREFIX + "data_sample", "change", self.on_data_sample)
        self.events.on(PREFIX + "data_sample-drop", "dragover", lambda e: e.preventDefault())
        self.events.on(PREFIX + "data_sample-drop", "drop", self.on_data_sample_drop)
        self.events.on(PREFIX + "create", "click", self.on_create)
        self._update()
        document.getElementById("create").hidden = False

    def values(self) -> dict[str, str]:
        """What the form holds, as typed (checkboxes as "true"/"false"), read in one go through FormData."""
        named = json.loads(window.JSON.stringify(window.Object.fromEntries(window.FormData.new(self.form))))
        checks = {f.name: "true" if f.name in named else "false" for f in FIELDS if f.kind == "bool"}
        return {**named, **checks}

    def roles(self) -> dict[str, Role]:
        """Each sample column's chosen role."""
        if self.sample is None:
            return {}
        return {c.name: _element(f"role-{k}").value for k, c in enumerate(self.sample.columns)}

    def _update(self) -> None:
        values = self.values()
        self.form.className = shown(values)  # which rows apply: app.css's .when-<choice> rules
        epsilon = planned_epsilon(values)
        _element("epsilon").textContent = (
            f"These privacy settings give ε = {epsilon:.2f} (δ = {values['delta']}) after {values['epochs']} rounds."
            if epsilon is not None
            else "No differential privacy: set a clip norm and a noise multiplier to add it."
        )

    async def on_sample(self, event: Any) -> None:
        """A sample CSV was picked."""
        chosen = _element("sample").files
        if chosen.length:
            await self._read_sample(chosen.item(0))

    async def on_drop(self, event: Any) -> None:
        """A sample CSV was dropped on the columns' zone."""
        event.preventDefault()
        dropped = event.dataTransfer.files
        if dropped.length:
            await self._read_sample(dropped.item(0))

    async def on_data_sample(self, event: Any) -> None:
        """Sample images or a sample text were picked."""
        await self._profile(_element("data_sample").files)

    async def on_data_sample_drop(self, event: Any) -> None:
        event.preventDefault()
        await self._profile(event.dataTransfer.files)

    async def _profile(self, chosen: Any) -> None:
        """Fill the image or text fields in from sample files."""
        if not chosen.length:
            return
        self._show_problems({})
        image = self.values()["data_kind"] == "image"
        try:
            sample = await files.chosen_files(chosen)
            found = image_profile(sample) if image else text_profile(sample)
        except DataError as e:
            self._show_problems({"data_sample": str(e)})
            return
        for name, value in found.items():
            _element(name).value = value
        if image:
            grey = "grey" if found["channels"] == "1" else "colour"
            read = f"Read: {found['width']} x {found['height']} px, {grey}, labels {found['labels']}."
        else:
            read = f"Read: {len(found['alphabet'])} characters, for the char tokenizer."
        _element("data_sample-hint").textContent = read
        self._update()

    async def _read_sample(self, file: Any) -> None:
        self._show_problems({})
        try:
            self.sample = read_sample(await files.file_text(file), str(file.name))
        except (DataError, ValueError) as e:
            self.sample = None
            _element("columns").hidden = True
            self._show_problems({"columns": str(e)})
            return
        rows = [table_row("th", ("Column", "Role", "Sample values"))]
        for k, (column, role) in enumerate(zip(self.sample.columns, self.sample.default_roles().values(),
                                               strict=True)):  # fmt: skip
            choice = _make("select", id=f"{PREFIX}role-{k}")
            choice.setAttribute("aria-label", f"role of {column.name}")
            for name in ROLES:
                option = _make("option", value=name)
                option.textContent = name
                choice.append(option)
            choice.value = role
            row, name_cell, role_cell, values_cell = _make("tr"), _make("td"), _make("td"), _make("td")
            name_cell.textContent = column.name
            values_cell.textContent = ", ".join(column.values[:5]) + (" …" if len(column.values) > 5 else "")
            role_cell.append(choice)
            row.append(name_cell, role_cell, values_cell)
            rows.append(row)
        _element("columns").replaceChildren(*rows)
        _element("columns").hidden = False

    def _show_problems(self, by_field: dict[str, str]) -> None:
        for name in self.problems | (by_field.keys() - {""}):  # only what changes: each is a round trip
            _element(f"{name}-error").textContent = by_field.get(name, "")
        self.problems = set(by_field) - {""}
        _element("result").textContent = by_field.get("", "")
        _element("result").dataset.state = "error" if by_field else "idle"

    async def on_create(self, event: Any) -> None:
        """Check the form; send a valid task to the server, with the admin token if one was given."""
        values = self.values()
        try:
            task, token = build_task(values, self.sample, self.roles())
        except FormProblems as e:
            self._show_problems({**e.by_field, "": e.by_field.get("", "Some fields need another value: see below.")})
            return
        self._show_problems({})
        _element("create").disabled = True
        try:
            chosen = _element("initial_weights").files
            weights = await files.file_bytes(chosen.item(0)) if chosen.length else None
            status, answer = await _post_task(task_to_json(task), token, values[ADMIN_TOKEN], weights)
        except Exception as e:
            self._show_problems({"": f"The server could not be reached: {e}"})
            return
        finally:
            _element("create").disabled = False
        if status == 201:
            _element("result").textContent = f"Created “{task.title}”. It is listed above for everyone."
            _element("result").dataset.state = "done"
            await self.created(task.id)
            return
        message = str(answer.get("error", f"the server answered {status}"))
        where = {401: ADMIN_TOKEN, 409: "id"}.get(status) or field_of(message.partition(":")[0])
        self._show_problems({where: message, "": "The server refused the task: see below."} if where else
                            {"": f"The server refused the task: {message}"})  # fmt: skip


async def _post_task(task: object, token: str, admin_token: str, weights: bytes | None) -> tuple[int, dict[str, Any]]:
    """POST the task (and its initial weights) to /api/tasks; the status and the JSON answer."""
    headers = {"Content-Type": "application/json"}
    if admin_token:
        headers["Authorization"] = f"Bearer {admin_token}"
    request: dict[str, object] = {"task": task, "join_token": token}
    if weights is not None:
        request["initial_model"] = base64.b64encode(weights).decode()
    body = json.dumps(request)
    options = to_js({"method": "POST", "headers": headers, "body": body}, dict_converter=js.Object.fromEntries)
    response = await js.fetch(js.location.origin + "/api/tasks", options)
    text = await response.text()
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {"error": text[:200]}
    return int(response.status), answer if isinstance(answer, dict) else {}
