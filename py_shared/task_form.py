"""The no-code task form: its fields, the task JSON they make, and each of task_from_json's problems put back next
to the field it is about. The form checks nothing itself: what a person typed goes into the JSON as typed when it
is not a number where one is due, so py_shared/task.py stays the one source of truth for what a task may be.

A tabular task's columns come from a sample CSV the creator drops in (read on the device, never uploaded): each
column gets a role, and the label's classes and each categorical column's vocabulary are the sample's values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args

from py_shared.data.tabular import class_order, csv_rows, is_number
from py_shared.privacy.accountant import RdpAccountant
from py_shared.protocol.messages import join_token_problem
from py_shared.task import MISSING_TOKENS, Aggregator, TaskDefinition, Topology, task_from_json
from py_shared.typed_json import JSON, ValidationError

Role = str  # "feature", "categorical", "label" or "ignore"
ROLES: tuple[Role, ...] = ("feature", "categorical", "label", "ignore")
CLASSES = ("categorical", "label")  # the roles whose values the task lists
MAX_SAMPLE_VALUES = 100  # a column with more distinct words than this is not a category (a name, an id)


@dataclass(frozen=True)
class Field:
    """One input of the form: its element id is `task-form-<name>`; `path` is where its value goes in the task
    JSON; `when` names the choices under which it applies (data kind, model kind, scheme)."""

    name: str
    label: str
    path: str
    # text, area, chars (a textarea kept as typed), int, float, list (comma-separated ints), words, choice,
    # int-choice, bool; columns, sample and weights are files the form reads (not values of the task)
    kind: str = "text"
    choices: tuple[str, ...] = ()
    default: str = ""
    when: tuple[str, ...] = ()


FIELDS: tuple[Field, ...] = (
    Field("title", "Title", "title"),
    Field("id", "Identifier (in links; from the title if left empty)", "id"),
    Field("description", "Description", "description", "area"),
    Field("data_kind", "Data type", "data.kind", "choice", ("tabular", "image", "text"), "tabular"),
    Field("columns", "Columns (from a sample CSV)", "data.feature_columns", "columns", when=("tabular",)),
    Field("normalize", "Standardise numeric columns", "data.normalize", "bool", default="true", when=("tabular",)),
    Field("data_sample", "Sample data (fills in the fields below)", "", "sample", when=("image", "text")),
    Field("width", "Image width (px)", "data.width", "int", default="28", when=("image",)),
    Field("height", "Image height (px)", "data.height", "int", default="28", when=("image",)),
    Field("channels", "Channels", "data.channels", "int-choice", ("1", "3"), "1", when=("image",)),
    Field("labels", "Labels (comma-separated)", "data.labels", "words", when=("image",)),
    Field("tokenizer", "Tokenizer", "data.tokenizer", "choice", ("char", "gpt2-bpe"), "char", when=("text",)),
    Field("context_length", "Context (tokens)", "data.context_length", "int", default="64", when=("text",)),
    Field("alphabet", "Characters (char tokenizer)", "data.alphabet", "chars", when=("text",)),
    Field("model_kind", "Model", "model.kind", "choice", ("mlp", "cnn", "gpt"), "mlp"),
    Field("hidden", "Hidden layer sizes", "model.hidden", "list", default="64, 32", when=("mlp",)),
    Field("conv", "Convolution channels", "model.conv", "list", default="16, 32", when=("cnn",)),
    Field("dense", "Dense layer sizes", "model.dense", "list", default="64", when=("cnn",)),
    Field("layers", "Layers", "model.layers", "int", default="2", when=("gpt",)),
    Field("heads", "Attention heads", "model.heads", "int", default="4", when=("gpt",)),
    Field("embed", "Embedding size", "model.embed", "int", default="64", when=("gpt",)),
    Field("initial_weights", "Initial weights (.safetensors; none: drawn from the seed)", "initial_model", "weights"),
    Field("epochs", "Epochs", "training.epochs", "int", default="10"),
    Field("batch_size", "Batch size", "training.batch_size", "int", default="32"),
    Field("learning_rate", "Learning rate", "training.learning_rate", "float", default="0.001"),
    Field("optimizer", "Optimizer", "training.optimizer", "choice", ("adam", "adamw", "sgd"), "adam"),
    Field("validation_fraction", "Validation share", "training.validation_fraction", "float", default="0.2"),
    Field("scheme", "Scheme", "scheme", "choice", ("local", "federated", "decentralized"), "federated"),
    Field("min_participants", "Minimum participants", "min_participants", "int", default="2"),
    Field("aggregator", "Aggregator", "aggregator", "choice", get_args(Aggregator), "fedavg", when=("federated",)),
    Field(
        "topology", "Topology", "decentralized.topology", "choice", get_args(Topology), "mesh", when=("decentralized",)
    ),
    Field("clip_norm", "Privacy: clip norm (0: none)", "privacy.clip_norm", "float", default="0"),
    Field("noise_multiplier", "Privacy: noise multiplier (0: none)", "privacy.noise_multiplier", "float", default="0"),
    Field("delta", "Privacy: δ", "privacy.delta", "float", default="0.00001"),
    Field("secure_aggregation", "Secure aggregation", "secure_aggregation", "bool", default="false"),
)
BY_NAME = {f.name: f for f in FIELDS}
FILE_KINDS = ("columns", "sample", "weights")
CHOOSERS = ("data_kind", "model_kind", "scheme")  # the fields whose values decide which fields apply (`when`)
JOIN_TOKEN, ADMIN_TOKEN = "join_token", "admin_token"  # not in the task: the API request carries them


@dataclass(frozen=True)
class SampleColumn:
    """One column of the sample CSV: whether every value is a number, and its distinct values (in first-seen
    order, up to MAX_SAMPLE_VALUES + 1)."""

    name: str
    numeric: bool
    values: tuple[str, ...]

    @property
    def suggested_role(self) -> Role:
        """Numbers are features; few distinct words, a category; many (names, ids), left out."""
        if self.numeric:
            return "feature"
        return "categorical" if len(self.values) <= 20 else "ignore"


@dataclass(frozen=True)
class CsvSample:
    """What the form learnt from a sample CSV: its columns."""

    name: str
    columns: tuple[SampleColumn, ...]

    def default_roles(self) -> dict[str, Role]:
        """The last column is the label; the others take their suggested roles."""
        roles = {c.name: c.suggested_role for c in self.columns}
        roles[self.columns[-1].name] = "label"
        return roles


class FormProblems(ValueError):
    """The form does not make a valid task: `by_field` maps a field's name ("" for the form as a whole) to what
    is wrong with it."""

    def __init__(self, by_field: dict[str, str]) -> None:
        self.by_field = by_field
        super().__init__("; ".join(f"{k or 'task'}: {v}" for k, v in by_field.items()))


def read_sample(text: str, name: str) -> CsvSample:
    """Profile a sample CSV (its header and values); ValueError says why it cannot serve as one."""
    if "\x00" in text:
        raise ValueError(f"{name}: this is not a CSV text file (it contains binary data)")
    rows = csv_rows(text)
    if len(rows) < 2:
        raise ValueError(f"{name}: a sample needs a header and at least one row")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or not all(header):
        raise ValueError(f"{name}: every column needs a name of its own in the header")
    columns = []
    for k, column in enumerate(header):
        cells = [r[k].strip() for r in rows[1:] if k < len(r) and r[k].strip() not in MISSING_TOKENS]
        distinct = tuple(dict.fromkeys(cells))[: MAX_SAMPLE_VALUES + 1]
        columns.append(SampleColumn(column, bool(cells) and all(is_number(c) for c in cells), distinct))
    return CsvSample(name, tuple(columns))


def applies(field: Field, values: Mapping[str, str]) -> bool:
    """Whether `field` is part of the task under the form's current choices."""
    chosen = {value_of(values, name) for name in CHOOSERS}
    return not field.when or bool(chosen & set(field.when))


def value_of(values: Mapping[str, str], name: str) -> str:
    """What the form holds for field `name`: what was typed, or the field's default."""
    return values.get(name, BY_NAME[name].default)


def _value(field: Field, text: str) -> JSON:
    """The JSON value of what was typed; as typed when it is not the number due, for task_from_json to name."""
    if field.kind == "chars":
        return text  # a newline or a space may be one of the characters
    text = text.strip()
    try:
        if field.kind in ("int", "int-choice"):
            return int(text)
        if field.kind == "float":
            return float(text)
        if field.kind == "list":
            return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        return text
    if field.kind == "bool":
        return text == "true"
    if field.kind == "words":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _put(target: dict[str, JSON], path: str, value: JSON) -> None:
    *parents, last = path.split(".")
    for key in parents:
        nested = target.setdefault(key, {})
        assert isinstance(nested, dict)
        target = nested
    target[last] = value


def slug(title: str) -> str:
    """An identifier made from a title: lowercase words joined by '-'."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:64]


def task_json(values: Mapping[str, str], sample: CsvSample | None, roles: Mapping[str, Role]) -> dict[str, JSON]:
    """The task JSON the form describes (fields that do not apply are left out)."""
    task: dict[str, JSON] = {}
    for field in FIELDS:
        if not applies(field, values) or field.kind in FILE_KINDS:
            continue
        value = _value(field, value_of(values, field.name))
        if field.name == "id" and value == "":
            value = slug(values.get("title", ""))
        if field.name == "conv":
            value = [{"channels": c} for c in value] if isinstance(value, list) else value
        _put(task, field.path, value)
    if value_of(values, "data_kind") == "tabular":
        _put(task, "data.feature_columns", [])
        if sample is not None:
            _columns(task, sample, roles)
    return task


def _columns(task: dict[str, JSON], sample: CsvSample, roles: Mapping[str, Role]) -> None:
    labels = [c for c in sample.columns if roles.get(c.name) == "label"]
    features = [c for c in sample.columns if roles.get(c.name) in ("feature", "categorical")]
    _put(task, "data.feature_columns", [c.name for c in features])
    categorical: dict[str, JSON] = {c.name: list(c.values) for c in features if roles.get(c.name) == "categorical"}
    _put(task, "data.categorical", categorical)
    if len(labels) == 1:
        _put(task, "data.label_column", labels[0].name)
        _put(task, "data.label_values", sorted(labels[0].values, key=class_order))


def build_task(
    values: Mapping[str, str], sample: CsvSample | None, roles: Mapping[str, Role]
) -> tuple[TaskDefinition, str]:
    """The task and the join token the form describes; FormProblems puts each problem next to its field."""
    problems: dict[str, str] = {}
    if value_of(values, "data_kind") == "tabular":
        if sample is None:
            problems["columns"] = "drop in a sample CSV: its header gives the columns"
        elif sum(1 for c in sample.columns if roles.get(c.name) == "label") != 1:
            problems["columns"] = "choose exactly one label column"
        elif any(len(c.values) > MAX_SAMPLE_VALUES for c in sample.columns if roles.get(c.name) in CLASSES):
            problems["columns"] = f"a label or a category takes at most {MAX_SAMPLE_VALUES} distinct values"
    token = values.get(JOIN_TOKEN, "")
    if problem := join_token_problem(token):
        problems[JOIN_TOKEN] = problem.removeprefix(f"{JOIN_TOKEN}: ")
    try:
        task = task_from_json(task_json(values, sample, roles))
    except ValidationError as e:
        for problem in e.problems:
            path, _, message = problem.partition(": ")
            problems.setdefault(field_of(path.removeprefix("task.")), message)
    if problems:
        raise FormProblems(problems)
    return task, token


def field_of(path: str) -> str:
    """The form field a task JSON path belongs to ("" when none does)."""
    if path.startswith("data.") and path.split(".")[1] in ("feature_columns", "label_column", "label_values",
                                                          "categorical"):  # fmt: skip
        return "columns"
    best = ""
    for field in FIELDS:
        if not field.path:
            continue
        if path == field.path or path.startswith(field.path + "."):
            return field.name
        if field.path.startswith(path + ".") and not best:
            best = field.name  # a problem about a group (privacy) goes next to its first field
    return best


def planned_epsilon(values: Mapping[str, str]) -> float | None:
    """The ε that the privacy settings give after the planned rounds (one per epoch), or None when the settings
    do not make one (no noise, or a value that is not a number)."""
    try:
        noise, delta = float(value_of(values, "noise_multiplier")), float(value_of(values, "delta"))
        clip, rounds = float(value_of(values, "clip_norm")), int(value_of(values, "epochs"))
    except ValueError:
        return None
    if noise <= 0 or clip <= 0 or not 0 < delta < 1 or rounds < 1:
        return None
    accountant = RdpAccountant(delta)
    accountant.step(noise, count=rounds)
    return accountant.epsilon
