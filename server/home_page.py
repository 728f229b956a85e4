"""The page's HTML with the task list already in it: a browser that cannot run PyDisco (no WebGPU, no JSPI)
still shows what the server offers, and every browser shows it before Python has started."""

from __future__ import annotations

from html import escape
from typing import Any

from py_shared.task_badges import badges

LIST = '<ul id="task-list"></ul>'
HIDDEN_HOME = '<section id="home" class="panel" hidden>'


def render_index(template: str, listing: list[dict[str, Any]]) -> str:
    """index.html with one item per task (title linking to /#/task/<id>, then its badges), and the list shown."""
    if LIST not in template or HIDDEN_HOME not in template:
        raise ValueError("index.html lacks the task list's placeholder")
    items = "".join(
        f'<li data-task="{escape(info["id"])}"><a href="#/task/{escape(info["id"])}">{escape(info["title"])}</a>'
        + "".join(f'<span class="badge">{escape(text)}</span>' for text in badges(info))
        + "</li>"
        for info in listing
    )
    filled = template.replace(LIST, f'<ul id="task-list">{items}</ul>')
    return filled.replace(HIDDEN_HOME, '<section id="home" class="panel">')
