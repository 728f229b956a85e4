"""A row of text cells, the one piece of markup every table of the page (epochs, data preview, test report,
sample columns) builds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyscript import document


def table_row(tag: str, texts: Iterable[str]) -> Any:
    """A <tr> of one `tag` cell (th or td) per text."""
    row = document.createElement("tr")
    for text in texts:
        cell = document.createElement(tag)
        cell.textContent = text
        row.append(cell)
    return row
