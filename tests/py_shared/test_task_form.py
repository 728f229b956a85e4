"""The no-code task form: what it builds is what task_from_json reads, and every invalid field gets its message
next to it (the messages are task.py's own), with nothing built."""

from __future__ import annotations

import pytest

from py_shared.privacy.accountant import RdpAccountant
from py_shared.task import TabularData, task_from_json, task_to_json
from py_shared.task_form import (
    BY_NAME,
    FIELDS,
    FormProblems,
    build_task,
    field_of,
    planned_epsilon,
    read_sample,
    task_json,
)

SAMPLE = read_sample(
    "PassengerId,Name,Sex,Age,Fare,Survived\n"
    "1,Braund,male,22,7.25,0\n2,Cumings,female,38,71.28,1\n3,Heikkinen,female,NA,7.92,1\n",
    "sample.csv",
)
ROLES = {**SAMPLE.default_roles(), "PassengerId": "ignore"}
VALID = {"title": "Titanic from a form", "description": "Who survived?", "min_participants": "2"}


def test_a_valid_form_makes_the_task_its_json_describes() -> None:
    task, token = build_task({**VALID, "join_token": "s3cret"}, SAMPLE, ROLES)
    assert token == "s3cret" and task.id == "titanic-from-a-form" and task.scheme == "federated"
    assert task.data == TabularData(feature_columns=("Name", "Sex", "Age", "Fare"), label_column="Survived",
                                    label_values=("0", "1"),
                                    categorical={"Name": ("Braund", "Cumings", "Heikkinen"),
                                                 "Sex": ("male", "female")})  # fmt: skip
    assert task_from_json(task_to_json(task)) == task


def test_the_sample_suggests_roles_numbers_features_few_words_categories_the_last_column_the_label() -> None:
    roles = SAMPLE.default_roles()
    assert roles == {"PassengerId": "feature", "Name": "categorical", "Sex": "categorical", "Age": "feature",
                     "Fare": "feature", "Survived": "label"}  # fmt: skip
    age = next(c for c in SAMPLE.columns if c.name == "Age")
    assert age.numeric and age.values == ("22", "38")  # a missing value is neither a value nor a word


# one invalid value per field, and the message that must appear next to it
INVALID = [
    ("title", "", "must not be empty"),
    ("id", "Not An Id", "lowercase letters"),
    ("data_kind", "sound", "must be one of"),
    ("width", "0", "between 1 and 1024"),
    ("height", "2000", "between 1 and 1024"),
    ("labels", "cat", "two distinct labels"),
    ("tokenizer", "words", "must be one of"),
    ("context_length", "1", "between 2 and 4096"),
    ("alphabet", "aa", "two distinct characters"),
    ("model_kind", "gpt", "cannot learn from tabular data"),
    ("hidden", "64, x", "must be a list"),
    ("hidden", "0", "must be positive"),
    ("conv", "", "at least one convolution layer"),
    ("dense", "-1", "must be positive"),
    ("layers", "0", "must be positive"),
    ("heads", "3", "do not divide embed"),
    ("embed", "two", "must be an integer"),
    ("epochs", "0", "at least 1"),
    ("epochs", "2.5", "must be an integer"),
    ("batch_size", "-4", "at least 1"),
    ("learning_rate", "fast", "must be a number"),
    ("learning_rate", "0", "must be positive"),
    ("optimizer", "rmsprop", "must be one of"),
    ("validation_fraction", "1", "in [0, 1)"),
    ("scheme", "star", "must be one of"),
    ("min_participants", "0", "at least 1"),
    ("aggregator", "mean", "must be one of"),
    ("topology", "star", "must be one of"),
    ("clip_norm", "-1", "must not be negative"),
    ("noise_multiplier", "1", "needs a positive clip_norm"),
    ("delta", "1.5", "in (0, 1)"),
    ("secure_aggregation", "true", "needs a federated or decentralized scheme"),
    ("join_token", "tab\there", "printable characters"),
]
# what else the field needs to apply: the data type, model or scheme it belongs to
CONTEXT = {
    "width": {"data_kind": "image", "model_kind": "cnn", "labels": "a, b"},
    "height": {"data_kind": "image", "model_kind": "cnn", "labels": "a, b"},
    "labels": {"data_kind": "image", "model_kind": "cnn", "labels": "a, b"},
    "context_length": {"data_kind": "text", "model_kind": "gpt", "alphabet": "ab"},
    "alphabet": {"data_kind": "text", "model_kind": "gpt", "alphabet": "ab"},
    "tokenizer": {"data_kind": "text", "model_kind": "gpt", "alphabet": "ab"},
    "conv": {"data_kind": "image", "model_kind": "cnn", "labels": "a, b"},
    "dense": {"data_kind": "image", "model_kind": "cnn", "labels": "a, b"},
    "layers": {"data_kind": "text", "model_kind": "gpt", "alphabet": "ab"},
    "heads": {"data_kind": "text", "model_kind": "gpt", "alphabet": "ab"},
    "embed": {"data_kind": "text", "model_kind": "gpt", "alphabet": "ab"},
    "topology": {"scheme": "decentralized"},
    "secure_aggregation": {"scheme": "local", "min_participants": "1"},
}


@pytest.mark.parametrize(("field", "value", "message"), INVALID, ids=[f"{f}={v!r}" for f, v, _ in INVALID])
def test_an_invalid_field_gets_its_message_and_nothing_is_built(field: str, value: str, message: str) -> None:
    context = CONTEXT.get(field, {})
    build_task({**VALID, **context}, SAMPLE, ROLES)  # valid without the bad value
    with pytest.raises(FormProblems) as raised:
        build_task({**VALID, **context, field: value}, SAMPLE, ROLES)
    assert message in raised.value.by_field.get(field, ""), raised.value.by_field


def test_every_field_of_the_form_is_in_the_table() -> None:
    assert {f.name for f in FIELDS} - {f for f, _, _ in INVALID} <= {
        "description",
        "normalize",
        "channels",
        "columns",
        "data_sample",
        "initial_weights",
    }  # columns: below; data_sample: tests/py_shared/test_sample_profile.py; initial_weights: the server checks them


def test_a_text_sample_s_characters_are_kept_as_they_are_newline_and_space_included() -> None:
    text = {**VALID, "data_kind": "text", "model_kind": "gpt", "alphabet": "\n ,abc"}
    task, _ = build_task(text, None, {})
    assert task.data.alphabet == "\n ,abc"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("roles", "message"),
    [({**ROLES, "Survived": "feature"}, "exactly one label"), ({**ROLES, "Fare": "label"}, "exactly one label")],
)
def test_the_columns_need_one_label(roles: dict[str, str], message: str) -> None:
    with pytest.raises(FormProblems) as raised:
        build_task(VALID, SAMPLE, roles)
    assert message in raised.value.by_field["columns"]


def test_a_tabular_task_needs_a_sample_and_a_label_with_few_values() -> None:
    with pytest.raises(FormProblems, match="sample CSV"):
        build_task(VALID, None, {})
    many = read_sample("x,y\n" + "".join(f"{i},v{i}\n" for i in range(150)), "many.csv")
    with pytest.raises(FormProblems, match="at most 100"):
        build_task(VALID, many, {"x": "feature", "y": "label"})


@pytest.mark.parametrize(
    ("text", "why"),
    [("a,b\n", "at least one row"), ("a,a\n1,2\n", "name of its own"), ("a,b\n1,\x002\n", "binary")],
)
def test_a_file_that_cannot_be_a_sample_is_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        read_sample(text, "bad.csv")


def test_problems_go_next_to_their_field() -> None:
    assert field_of("training.epochs") == "epochs"
    assert field_of("data.categorical.Sex") == "columns"
    assert field_of("privacy") == "clip_norm"  # a problem about a group: next to its first field
    assert field_of("secure.clip_value") == ""  # no field: the form's general message


def test_the_planned_epsilon_is_the_accountant_s_after_one_round_per_epoch() -> None:
    accountant = RdpAccountant(1e-5)
    accountant.step(1.1, count=20)
    values = {"noise_multiplier": "1.1", "clip_norm": "1", "delta": "1e-5", "epochs": "20"}
    assert planned_epsilon(values) == accountant.epsilon
    assert planned_epsilon({**values, "noise_multiplier": "0"}) is None
    assert planned_epsilon({**values, "epochs": "many"}) is None
    assert task_json(VALID, SAMPLE, ROLES)["privacy"] == {"clip_norm": 0.0, "noise_multiplier": 0.0, "delta": 1e-5}
    assert BY_NAME["scheme"].default == "federated"
