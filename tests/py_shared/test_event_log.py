"""The event log's sentences, for a run's typical statuses."""

from __future__ import annotations

from py_shared.federated.client import Status
from py_shared.federated.event_log import events


def test_a_run_s_story_in_plain_words() -> None:
    run = [
        Status("connecting"),
        Status("training", round=0, participants=1, min_participants=2),
        Status("waiting", round=0, participants=1, min_participants=2),
        Status("waiting", round=0, participants=2, min_participants=2),
        Status("aggregating", round=0, participants=2, min_participants=2),
        Status("training", round=1, participants=2, min_participants=2, epsilon=0.51),
        Status("reconnecting", round=1, participants=2, min_participants=2, detail="server closed"),
        Status("training", round=1, participants=1, min_participants=2),
        Status("training", round=1, participants=3, min_participants=2),
        Status("left", round=1, participants=3, min_participants=2),
    ]
    told = [events(before, now) for before, now in zip([None, *run], run, strict=False)]
    assert told == [
        ["Connecting to the server"],
        ["Joined the task at round 0 (1 here)"],
        ["Waiting for another participant (1 of 2 here)"],
        ["Someone joined (2 here now)"],
        [],
        ["Round 0 aggregated: training goes on from the new model; privacy spent so far: ε = 0.51"],
        ["Connection lost (server closed): reconnecting"],
        ["Connected again"],  # whoever is here after a reconnection is not news
        ["2 participants joined (3 here now)"],
        ["Left the collaboration"],
    ]


def test_a_run_that_begins_waiting_says_it_joined_and_whom_it_waits_for() -> None:
    first = Status("waiting", round=2, participants=1, min_participants=3)
    assert events(None, first) == [
        "Joined the task at round 2 (1 here)",
        "Waiting for 2 more participants (1 of 3 here)",
    ]
