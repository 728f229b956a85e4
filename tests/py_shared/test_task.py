"""Task definitions: JSON round trips exactly, and validation names every bad field at once."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from py_shared.task import (
    CNNModel,
    ConvLayer,
    GPTModel,
    ImageData,
    MLPModel,
    Privacy,
    SecureAggregation,
    TabularData,
    TaskDefinition,
    TextData,
    Training,
    task_from_json,
    task_to_json,
)
from py_shared.typed_json import ValidationError

TITANIC = TaskDefinition(
    id="titanic",
    title="Titanic",
    data=TabularData(
        feature_columns=("Pclass", "Sex", "Age"),
        label_column="Survived",
        label_values=("0", "1"),
        categorical={"Sex": ("male", "female")},
    ),
    model=MLPModel(hidden=(16, 8)),
    training=Training(epochs=3, batch_size=16, optimizer="sgd"),
    scheme="federated",
    min_participants=2,
    aggregator="fedavg",  # secure aggregation leaves the server only the sum: fedavg or fedprox
    privacy=Privacy(clip_norm=1.0, noise_multiplier=0.5),
    secure_aggregation=True,
)
DIGITS = TaskDefinition(
    id="digits",
    title="Digits",
    data=ImageData(width=28, height=28, labels=tuple("0123456789")),
    model=CNNModel(conv=(ConvLayer(channels=8), ConvLayer(channels=16, kernel=5, pool=1)), dense=(32,)),
)
TEXT = TaskDefinition(
    id="poems",
    title="Poems",
    data=TextData(tokenizer="char", context_length=32, alphabet="abc "),
    model=GPTModel(layers=1, heads=2, embed=16),
)
DISTRIBUTED = replace(
    TITANIC,
    id="titanic-ddp",
    min_participants=3,
    aggregator="fedprox",
    privacy=Privacy(clip_norm=0.5, noise_multiplier=1.1, distributed=True),
    secure=SecureAggregation(clip_value=0.25, max_participants=50, threshold=0.75, graph="sparse", neighbours=6),
)


@pytest.mark.parametrize("task", [TITANIC, DIGITS, TEXT, DISTRIBUTED], ids=lambda t: t.id)
def test_json_round_trip_is_exact(task: TaskDefinition) -> None:
    text = json.dumps(task_to_json(task))
    assert task_from_json(json.loads(text)) == task
    assert task.data_type == task.data.kind


def test_defaults_fill_what_is_left_out() -> None:
    minimal = {
        "id": "t",
        "title": "T",
        "data": {"kind": "image", "width": 8, "height": 8, "labels": ["a", "b"]},
        "model": {"kind": "cnn", "conv": [{"channels": 4}]},
    }
    task = task_from_json(minimal)
    assert task.training == Training() and task.scheme == "local" and task.privacy == Privacy()
    assert task.data == ImageData(width=8, height=8, channels=1, labels=("a", "b"))


def problems_of(data: Any) -> list[str]:
    with pytest.raises(ValidationError) as e:
        task_from_json(data)
    return e.value.problems


def test_every_bad_field_is_named_in_one_error() -> None:
    bad = task_to_json(TITANIC)
    bad["id"] = "Not An Id!"
    bad["training"]["batch_size"] = 0
    bad["training"]["learning_rate"] = "fast"
    bad["training"]["optimizer"] = "rmsprop"
    bad["privacy"]["delta"] = 2
    bad["data"]["categorical"]["Cabin"] = ["A"]
    bad["surprise"] = 1
    problems = problems_of(bad)
    for expected in [
        "task.id:",
        "task.training.batch_size: must be at least 1",
        "task.training.learning_rate: must be a number, got a string",
        "task.training.optimizer: must be one of 'sgd', 'adam', 'adamw', got 'rmsprop'",
        "task.privacy.delta: must be in (0, 1)",
        "task.data.categorical.Cabin: not one of the feature columns",
        "task.surprise: unknown field",
    ]:
        assert any(p.startswith(expected) for p in problems), (expected, problems)


def test_structural_errors() -> None:
    assert problems_of([]) == ["task: must be an object, got a list"]
    problems = problems_of({"id": "x", "title": "X", "data": {"kind": "audio"}, "model": {"kind": "mlp"}})
    assert problems == ["task.data.kind: must be one of 'tabular', 'image', 'text', got 'audio'"]
    problems = problems_of({"title": "X", "data": {"kind": "text", "context_length": 8}, "model": {"kind": "gpt"}})
    assert "task.id: required" in problems and "task.data.tokenizer: required" in problems


def test_numbers_are_checked_strictly() -> None:
    base = task_to_json(DIGITS)
    for value, message in [
        (True, "must be an integer, got a boolean"),
        (2.5, "must be an integer, got a number"),
        (None, "must be an integer, got null"),
    ]:
        bad = json.loads(json.dumps(base))
        bad["training"]["epochs"] = value
        assert problems_of(bad) == [f"task.training.epochs: {message}"]
    bad = json.loads(json.dumps(base))
    bad["training"]["learning_rate"] = float("nan")
    assert problems_of(bad) == ["task.training.learning_rate: must be a finite number, got nan"]
    bad = json.loads(json.dumps(base))
    bad["data"]["channels"] = True
    assert problems_of(bad)[0].startswith("task.data.channels: must be one of 1, 3")


def test_cross_field_rules() -> None:
    mismatched = task_to_json(TEXT)
    mismatched["model"] = {"kind": "cnn", "conv": [{"channels": 2, "kernel": 4}]}
    assert problems_of(mismatched) == ["task.model.conv[0].kernel: must be a positive odd number"]
    mismatched["model"]["conv"][0]["kernel"] = 3
    assert problems_of(mismatched) == ["task.model.kind: a 'cnn' model cannot learn from text data"]
    local_secure = task_to_json(DIGITS) | {"secure_aggregation": True, "min_participants": 2}
    assert problems_of(local_secure) == ["task.secure_aggregation: needs a federated or decentralized scheme"]
    heads = task_to_json(TEXT)
    heads["model"]["heads"] = 3
    assert problems_of(heads) == ["task.model.heads: 3 heads do not divide embed=16"]
    noisy = task_to_json(DIGITS) | {"privacy": {"noise_multiplier": 1.0}}
    assert problems_of(noisy)[0].startswith("task.privacy.noise_multiplier: noise needs a positive clip_norm")


def test_decentralized_settings_out_of_range_are_refused() -> None:
    peers = task_to_json(DIGITS) | {"scheme": "decentralized", "min_participants": 3}
    assert task_from_json(peers | {"decentralized": {"topology": "ring"}}).decentralized.topology == "ring"
    assert problems_of(peers | {"decentralized": {"topology": "gossip", "gossip_degree": 3}}) == [
        "task.decentralized.gossip_degree: must be an even number (0: chosen from the number of members)"
    ]
    assert problems_of(peers | {"decentralized": {"exchange_timeout_s": 0.5}}) == [
        "task.decentralized.exchange_timeout_s: must be between 1 and 3600"
    ]
    secure = peers | {"secure_aggregation": True}
    assert task_from_json(secure | {"decentralized": {"topology": "ring"}}).secure_aggregation
    assert problems_of(secure | {"decentralized": {"topology": "gossip"}}) == [
        "task.secure_aggregation: gossiping peers each average their own neighbours' models, with no one sum to "
        "hide them in: use the mesh or ring topology"
    ]
    assert problems_of(peers | {"privacy": {"clip_norm": 1.0}}) == [
        "task.privacy: differential privacy between peers is not built yet: leave clip_norm and noise at 0"
    ]


def test_tabular_encoding_width() -> None:
    data = TITANIC.data
    assert isinstance(data, TabularData)
    assert data.numeric_columns == ("Pclass", "Age")
    assert data.input_size == 2 + 2


THRESHOLD = "secure.threshold: must be in (0.5, 1]: a smaller one would let a lying server open both secrets"
MAX_PARTICIPANTS = "secure.max_participants: must be between 2 and 1000"
MIN_PARTICIPANTS = "min_participants: a secure sum needs at least 2, and at most secure.max_participants"
AGGREGATOR = "secure_aggregation: the server sees only the sum, so the aggregator must be fedavg or fedprox"
CENTRAL = "secure_aggregation: the server cannot clip updates it cannot see; use privacy.distributed"
NOT_SECURE = "privacy.distributed: needs secure_aggregation (otherwise the server sees each noised update)"
NO_NOISE = "privacy.distributed: distributed DP needs a positive noise_multiplier"
BOTH = "privacy.distributed: central and distributed DP exclude each other"
FRACTION_BITS = (
    "secure.clip_value: with max_participants 1000, a clip_value of 1e+06 leaves 1 fractional bits in 32-bit "
    "sums; a clip_value of at most 8388.61 keeps 8"
)
SECURE_RULES: list[tuple[dict[str, Any], str]] = [
    ({"aggregator": "median"}, AGGREGATOR),
    ({"privacy": {"central": True}}, CENTRAL),
    ({"privacy": {"distributed": True}, "secure_aggregation": False}, NOT_SECURE),
    ({"privacy": {"distributed": True, "noise_multiplier": 0.0}}, NO_NOISE),
    ({"privacy": {"distributed": True, "central": True}}, BOTH),
    ({"secure": {"threshold": 0.5}}, THRESHOLD),
    ({"secure": {"threshold": 1.2}}, THRESHOLD),
    ({"secure": {"max_participants": 1}}, MAX_PARTICIPANTS),
    ({"secure": {"max_participants": 5000}}, MAX_PARTICIPANTS),
    ({"secure": {"clip_value": 0.0}}, "secure.clip_value: must be positive"),
    ({"secure": {"clip_value": 1e6, "max_participants": 1000}}, FRACTION_BITS),
    ({"secure": {"neighbours": 3, "graph": "sparse"}}, "secure.neighbours: must be an even number (0: automatic)"),
    ({"secure": {"neighbours": 4}}, "secure.neighbours: only a sparse graph has a number of neighbours"),
    ({"secure": {"phase_timeout_s": 0}}, "secure.phase_timeout_s: must be positive"),
    ({"min_participants": 1}, MIN_PARTICIPANTS),
    ({"min_participants": 3, "secure": {"max_participants": 2}}, MIN_PARTICIPANTS),
]


@pytest.mark.parametrize(("changes", "expected"), SECURE_RULES, ids=[json.dumps(c) for c, _ in SECURE_RULES])
def test_secure_aggregation_rules(changes: dict[str, Any], expected: str) -> None:
    # each change to a valid secure task breaks one rule: exactly that rule is reported
    data = task_to_json(TITANIC)
    data |= {key: data[key] | value if isinstance(value, dict) else value for key, value in changes.items()}
    assert problems_of(data) == [f"task.{expected}"]
