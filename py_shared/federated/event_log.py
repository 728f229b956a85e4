"""The training board's event log: what changed between two statuses of a collaboration, as a person would say
it (someone joined or left, waiting for whom, a round aggregated, the connection lost and back). Derived from the
statuses the clients already report, so federated clients and decentralized peers tell the same story."""

from __future__ import annotations

from py_shared.federated.client import Status


def events(before: Status | None, now: Status) -> list[str]:
    """What happened between `before` (None: the run just began) and `now`, oldest first."""
    said: list[str] = []
    if now.state not in ("connecting", "reconnecting", "left") and (before is None or before.state == "connecting"):
        said.append(f"Joined the task at round {now.round} ({now.participants} here)")
    if before is None or before.state != now.state:
        said += _state_change(before, now)
    if before is not None and before.state not in ("connecting", "reconnecting"):
        joined = now.participants - before.participants
        if joined > 0:
            said.append(f"{_people(joined)} joined ({now.participants} here now)")
        elif joined < 0:
            said.append(f"{_people(-joined)} left ({now.participants} here now)")
    if before is not None and now.round > before.round:
        spent = f"; privacy spent so far: ε = {now.epsilon:.2f}" if now.epsilon is not None else ""
        said.append(f"Round {before.round} aggregated: training goes on from the new model{spent}")
    return said


def _people(n: int) -> str:
    return "Someone" if n == 1 else f"{n} participants"


def _state_change(before: Status | None, now: Status) -> list[str]:
    if now.state == "connecting":
        return ["Connecting to the server"]
    if now.state == "reconnecting":
        return [f"Connection lost ({now.detail}): reconnecting" if now.detail else "Connection lost: reconnecting"]
    if before is not None and before.state == "reconnecting":
        return ["Connected again"]
    if now.state == "waiting" and now.participants < now.min_participants:
        missing = now.min_participants - now.participants
        who = "another participant" if missing == 1 else f"{missing} more participants"
        return [f"Waiting for {who} ({now.participants} of {now.min_participants} here)"]
    if now.state == "waiting":
        return ["Waiting for the others to finish their round"]
    if now.state == "left":
        return ["Left the collaboration"]
    return []
