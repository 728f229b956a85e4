"""A task in a few words, for the home list: what data it learns from, how participants train, what protects
them, who takes part now. One source for the server (which writes the list into the page, so a browser that
cannot run PyDisco still shows it) and the page (which keeps it fresh)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

SCHEMES = {"local": "trains alone", "federated": "federated", "decentralized": "peer to peer"}


def badges(info: dict[str, Any]) -> list[str]:
    """The badges of one entry of GET /api/tasks."""
    out = [f"{info['data_type']} data", SCHEMES.get(info["scheme"], info["scheme"])]
    out += ["private: join token"] * bool(info.get("private"))
    out += ["secure aggregation"] * bool(info.get("secure_aggregation"))
    out += ["differential privacy"] * bool(info.get("differential_privacy"))
    if info["scheme"] != "local":
        out.append(f"{info.get('online', 0)} online, {info.get('min_participants', 1)} needed")
    return out


def task_items_html(listing: Iterable[dict[str, Any]]) -> str:
    """The home list's items: each task's title, linking to /#/task/<id>, then its badges."""
    return "".join(
        f'<li data-task="{escape(info["id"])}"><a href="#/task/{escape(info["id"])}">{escape(info["title"])}</a>'
        + "".join(f'<span class="badge">{escape(text)}</span>' for text in badges(info))
        + "</li>"
        for info in listing
    )
