"""The page's HTML with the task list already in it: a browser that cannot run PyDisco (no WebGPU, no JSPI)
still shows what the server offers, and every browser shows it before Python has started."""

from __future__ import annotations

from typing import Any

from py_shared.task_badges import task_items_html

LIST = '<ul id="task-list"></ul>'
HIDDEN_HOME = '<section id="home" class="panel" hidden>'


def render_index(template: str, listing: list[dict[str, Any]]) -> str:
    """index.html with one item per task (title linking to /#/task/<id>, then its badges), and the list shown."""
    if LIST not in template or HIDDEN_HOME not in template:
        raise ValueError("index.html lacks the task list's placeholder")
    filled = template.replace(LIST, f'<ul id="task-list">{task_items_html(listing)}</ul>')
    return filled.replace(HIDDEN_HOME, '<section id="home" class="panel">')
