"""The page's view of a federated or decentralized run: round, participants, state, privacy spent and (between
peers) the connections and the model's fingerprint, for people and tests."""

from __future__ import annotations

import time
from typing import Any

from pyscript import document

from py_shared.federated.client import Status
from py_shared.federated.event_log import events

STATE_TEXT = {
    "connecting": "Connecting to the server…",
    "waiting": "Waiting for more participants before training…",
    "training": "Training on your data",
    "aggregating": "Update sent; waiting for the others' updates…",
    "reconnecting": "Connection lost; reconnecting…",
    "left": "Left the collaboration",
}


def show_status(status: Status) -> None:
    """Fill #federation: its text, and data-state, data-round, data-participants, data-min-participants (and
    data-secure, data-epsilon, data-fingerprint when they apply)."""
    element: Any = document.getElementById("federation")
    element.hidden = False
    element.dataset.state = status.state
    element.dataset.round = str(status.round)
    element.dataset.participants = str(status.participants)
    element.dataset.minParticipants = str(status.min_participants)
    plural = "s" if status.participants != 1 else ""
    parts = [
        f"Round {status.round}",
        f"{status.participants} participant{plural} (at least {status.min_participants})",
        awaited(status) or STATE_TEXT.get(status.state, status.state),
    ]
    if status.secure:
        element.dataset.secure = status.secure
        parts.append(status.secure)
    if status.epsilon is not None:
        element.dataset.epsilon = f"{status.epsilon:.4g}"
        parts.append(f"privacy spent: ε = {status.epsilon:.2f}")
    if status.fingerprint:
        element.dataset.fingerprint = status.fingerprint
        parts.append(f"model {status.fingerprint}")
    if status.detail and status.state in ("reconnecting", "waiting", "aggregating"):
        parts.append(status.detail)
    element.textContent = " · ".join(parts)


def awaited(status: Status) -> str:
    """Who the run waits for, in plain words, while too few participants are here ("" otherwise)."""
    missing = status.min_participants - status.participants
    if status.state != "waiting" or missing <= 0:
        return ""
    people = "another participant" if missing == 1 else f"{missing} more participants"
    return f"Waiting for {people} to join this task ({status.participants} of {status.min_participants} here)"


def hide() -> None:
    """No federation in this run."""
    element: Any = document.getElementById("federation")
    element.hidden = True
    element.dataset.state = "off"


class EventLog:
    """#event-log: what happened in the run with the others, in plain words, each line with its time."""

    MAX_LINES = 200  # a long run keeps its latest events

    def __init__(self) -> None:
        self.last: Status | None = None

    def reset(self) -> None:
        """A new run: an empty log."""
        self.last = None
        element: Any = document.getElementById("event-log")
        element.replaceChildren()
        element.hidden = True

    def add(self, status: Status) -> None:
        """Log what changed since the last status."""
        element: Any = document.getElementById("event-log")
        for line in events(self.last, status):
            item = document.createElement("li")
            item.textContent = f"{time.strftime('%H:%M:%S')} {line}"
            element.append(item)
            element.hidden = False
        while element.children.length > self.MAX_LINES:
            element.firstElementChild.remove()
        self.last = status
