"""The task form's markup, written as one HTML string: the page's worker reaches the DOM through a synchronous
proxy, a round trip per call, and building the ~40 fields element by element took 2 of the page's 6 s to ready.
Which rows show is one class list on the form (`shown`), matched by app.css's `.when-<choice>` rules."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from py_shared.task_form import ADMIN_TOKEN, CHOOSERS, FIELDS, FILE_KINDS, JOIN_TOKEN, Field, value_of

PREFIX = "task-form-"
EXTRA = ((JOIN_TOKEN, "Join token (makes the task private; leave empty for a public one)"),
         (ADMIN_TOKEN, "This server's admin token (if it asks for one)"))  # fmt: skip
TEXT = 'type="text" autocomplete="off" spellcheck="false"'
FILES = {
    "columns": (
        'accept=".csv,text/csv"',
        "drop",
        "Drop a sample CSV here, or pick one: its header gives the columns. It stays on this device.",
    ),
    "sample": (
        "multiple",
        "data_sample-drop",
        "Drop labelled images here (a zip, or files with a labels.csv), or a text: the size, channels and labels, or"
        " the characters, are read from them. They stay on this device.",
    ),
}


def _attribute(value: str) -> str:
    return escape(value, quote=True)


def _control(field: Field) -> str:
    """The input of a field that holds a value; named, so that FormData reads the whole form at once."""
    name, default = field.name, _attribute(field.default)
    common = f'id="{PREFIX}{name}" name="{name}"'
    if field.kind in ("choice", "int-choice"):
        options = "".join(
            f'<option value="{_attribute(c)}"{" selected" * (c == field.default)}>{escape(c)}</option>'
            for c in field.choices
        )
        return f"<select {common}>{options}</select>"
    if field.kind == "bool":
        return f'<input {common} type="checkbox" value="true"{" checked" * (field.default == "true")}>'
    if field.kind in ("area", "chars"):
        return f'<textarea {common} rows="3" spellcheck="false">{escape(field.default)}</textarea>'
    return f'<input {common} {TEXT} value="{default}">'


def _file_zone(field: Field) -> str:
    """A file field: a picker, and for samples a drop zone with its hint (and the columns' table)."""
    if field.kind == "weights":
        return f'<input type="file" accept=".safetensors" id="{PREFIX}{field.name}">'
    accept, zone, hint = FILES[field.kind]
    picker_id = "sample" if field.kind == "columns" else field.name
    table = f'<table id="{PREFIX}columns" hidden></table>' if field.kind == "columns" else ""
    return (
        f'<div class="drop" id="{PREFIX}{zone}"><input type="file" {accept} id="{PREFIX}{picker_id}">'
        f'<p class="hint" id="{PREFIX}{field.name}-hint">{escape(hint)}</p>{table}</div>'
    )


def _row(name: str, label: str, control: str, when: tuple[str, ...] = (), check: bool = False) -> str:
    classes = " ".join(["field", *(["when"] if when else []), *(f"when-{w}" for w in when)])
    error = f'<p class="field-error" id="{PREFIX}{name}-error"></p>'
    if check:  # the label is the finger's target, as wide as the form
        caption = f'<label class="check">{control} {escape(label)}</label>'
        return f'<div class="{classes}" data-field="{name}">{caption}{error}</div>'
    caption = f'<label for="{PREFIX}{name}">{escape(label)}</label>'
    return f'<div class="{classes}" data-field="{name}">{caption}{control}{error}</div>'


def form_html() -> str:
    """Every row of the form, in FIELDS order, then the join and admin tokens."""
    rows = []
    for f in FIELDS:
        control = _file_zone(f) if f.kind in FILE_KINDS else _control(f)
        rows.append(_row(f.name, f.label, control, f.when, check=f.kind == "bool"))
    for name, label in EXTRA:
        secret = ' class="secret"' if name == ADMIN_TOKEN else ""
        rows.append(_row(name, label, f'<input id="{PREFIX}{name}" name="{name}" {TEXT}{secret}>'))
    return "".join(rows)


def shown(values: Mapping[str, str]) -> str:
    """The form's class list under its current choices: `show-<value>` of each chooser."""
    return " ".join(f"show-{value_of(values, name)}" for name in CHOOSERS)


def when_choices() -> set[str]:
    """Every choice a row's visibility depends on (app.css needs a rule for each)."""
    return {w for f in FIELDS for w in f.when}
