"""The "Create a task" panel: the form py_shared/task_form.py describes, drawn on the page; a sample CSV dropped in
or picked (read here, never uploaded) gives a tabular task's columns; the ε the privacy settings give is shown as
the creator types; each problem appears next to its field, and only a valid task is sent to the server."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import js
from pyodide.ffi import to_js
from pyscript import document

from py_browser import files
from py_browser.page_events import PageEvents
from py_browser.table_rows import table_row
from py_shared.data.examples import DataError
from py_shared.task import task_to_json
from py_shared.task_form import (
    ADMIN_TOKEN,
    BY_NAME,
    FIELDS,
    JOIN_TOKEN,
    ROLES,
    CsvSample,
    Field,
    FormProblems,
    Role,
    applies,
    build_task,
    field_of,
    planned_epsilon,
    read_sample,
)

PREFIX = "task-form-"
EXTRA = ((JOIN_TOKEN, "Join token (makes the task private; leave empty for a public one)"),
         (ADMIN_TOKEN, "This server's admin token (if it asks for one)"))  # fmt: skip


def _element(name: str) -> Any:
    return document.getElementById(PREFIX + name)


def _make(tag: str, **attributes: str) -> Any:
    element = document.createElement(tag)
    for key, value in attributes.items():
        element.setAttribute(key.removesuffix("_"), value)
    return element


def _input(field: Field) -> Any:
    if field.kind in ("choice", "int-choice"):
        control = _make("select")
        for choice in field.choices:
            option = _make("option", value=choice)
            option.textContent = choice
            control.append(option)
    elif field.kind == "bool":
        control = _make("input", type="checkbox")
        control.checked = field.default == "true"
    elif field.kind == "area":
        control = _make("textarea", rows="3")
    else:
        control = _make("input", type="text", autocomplete="off", spellcheck="false")
    control.id = PREFIX + field.name
    if field.kind != "bool":
        control.value = field.default
    return control


def _row(name: str, label: str, control: Any) -> Any:
    row = _make("div", class_="field")
    row.dataset.field = name
    caption = _make("label", for_=PREFIX + name)
    caption.textContent = label
    error = _make("p", class_="field-error", id=f"{PREFIX}{name}-error")
    if control.getAttribute("type") == "checkbox":  # the label is the finger's target, as wide as the form
        caption.className = "check"
        caption.prepend(control)
        row.append(caption, error)
    else:
        row.append(caption, control, error)
    return row


class TaskForm:
    """Wires #create; `created(task_id)` runs once the server took a task (the list refreshes, the task opens)."""

    def __init__(self, created: Callable[[str], Awaitable[None]]) -> None:
        self.created = created
        self.sample: CsvSample | None = None
        self.events = PageEvents()
        form = document.getElementById("task-form")
        rows = [self._columns_row() if f.kind == "columns" else _row(f.name, f.label, _input(f)) for f in FIELDS]
        for name, label in EXTRA:
            secret = name == ADMIN_TOKEN
            rows.append(_row(name, label, _make("input", type="text", id=PREFIX + name, autocomplete="off",
                                                spellcheck="false", class_="secret" if secret else "")))  # fmt: skip
        form.replaceChildren(*rows)
        self.events.on("task-form", "input", lambda e: self._update())
        self.events.on("task-form", "change", lambda e: self._update())
        self.events.on(PREFIX + "sample", "change", self.on_sample)
        self.events.on(PREFIX + "drop", "dragover", lambda e: e.preventDefault())
        self.events.on(PREFIX + "drop", "drop", self.on_drop)
        self.events.on(PREFIX + "create", "click", self.on_create)
        self._update()
        document.getElementById("create").hidden = False

    def _columns_row(self) -> Any:
        picker = _make("input", type="file", accept=".csv,text/csv")
        picker.id = PREFIX + "sample"
        zone = _make("div", class_="drop", id=PREFIX + "drop")
        hint = _make("p", class_="hint")
        hint.textContent = "Drop a sample CSV here, or pick one: its header gives the columns. It stays on this device."
        table = _make("table", id=PREFIX + "columns", hidden="")
        zone.append(picker, hint, table)
        return _row("columns", BY_NAME["columns"].label, zone)

    def values(self) -> dict[str, str]:
        """What the form holds, as typed (checkboxes as "true"/"false")."""
        out = {}
        for field in FIELDS:
            if field.kind != "columns":  # the sample's columns: roles()
                control = _element(field.name)
                out[field.name] = ("true" if control.checked else "false") if field.kind == "bool" else control.value
        for name, _ in EXTRA:
            out[name] = _element(name).value
        return out

    def roles(self) -> dict[str, Role]:
        """Each sample column's chosen role."""
        if self.sample is None:
            return {}
        return {c.name: _element(f"role-{k}").value for k, c in enumerate(self.sample.columns)}

    def _update(self) -> None:
        values = self.values()
        for field in FIELDS:
            document.querySelector(f'#task-form [data-field="{field.name}"]').hidden = not applies(field, values)
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
        for name in [f.name for f in FIELDS] + [name for name, _ in EXTRA]:
            _element(f"{name}-error").textContent = by_field.get(name, "")
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
            status, answer = await _post_task(task_to_json(task), token, values[ADMIN_TOKEN])
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


async def _post_task(task: object, token: str, admin_token: str) -> tuple[int, dict[str, Any]]:
    """POST the task to /api/tasks; the status and the JSON answer."""
    headers = {"Content-Type": "application/json"}
    if admin_token:
        headers["Authorization"] = f"Bearer {admin_token}"
    body = json.dumps({"task": task, "join_token": token})
    options = to_js({"method": "POST", "headers": headers, "body": body}, dict_converter=js.Object.fromEntries)
    response = await js.fetch(js.location.origin + "/api/tasks", options)
    text = await response.text()
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {"error": text[:200]}
    return int(response.status), answer if isinstance(answer, dict) else {}
