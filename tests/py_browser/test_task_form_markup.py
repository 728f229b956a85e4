"""The task form's markup: one control per field, named for FormData, and a CSS rule for every choice that shows
or hides a row."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

from py_browser.task_form_markup import EXTRA, PREFIX, form_html, shown, when_choices
from py_shared.task_form import FIELDS, FILE_KINDS, applies
from tests.conftest import ROOT


class Controls(HTMLParser):
    """Every element's id, the named controls, and each row's classes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: Counter[str] = Counter()
        self.names: list[str] = []
        self.rows: dict[str, set[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids[a["id"] or ""] += 1
        if a.get("name"):
            self.names.append(a["name"] or "")
        if a.get("data-field"):
            self.rows[a["data-field"] or ""] = set((a.get("class") or "").split())


def test_every_field_has_one_control_and_an_error_line_and_the_values_are_named() -> None:
    parsed = Controls()
    parsed.feed(form_html())
    assert all(count == 1 for count in parsed.ids.values()), [i for i, c in parsed.ids.items() if c > 1]
    for field in FIELDS:
        assert parsed.ids[f"{PREFIX}{field.name}-error"] == 1, field.name
    extra = [name for name, _ in EXTRA]
    assert parsed.names == [f.name for f in FIELDS if f.kind not in FILE_KINDS] + extra  # files: read apart
    assert list(parsed.rows) == [f.name for f in FIELDS] + extra


def test_a_row_is_shown_exactly_when_its_field_applies() -> None:
    parsed = Controls()
    parsed.feed(form_html())
    css = (ROOT / "www" / "app.css").read_text()
    for choice in when_choices():  # the stylesheet shows a row under each choice it depends on
        assert f"#task-form.show-{choice} .when-{choice}" in css, choice
    for values in ({}, {"data_kind": "image", "model_kind": "cnn"}, {"data_kind": "text", "scheme": "decentralized"}):
        form = set(shown(values).split())
        for field in FIELDS:
            classes = parsed.rows[field.name]
            visible = "when" not in classes or any(f"show-{c[5:]}" in form for c in classes if c.startswith("when-"))
            assert visible == applies(field, values), (values, field.name)
