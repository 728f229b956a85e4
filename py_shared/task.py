"""A task: what is learnt, from which data, by which model, how, and with which privacy — as frozen dataclasses.

DISCO's fields all have a home here: epochs, roundDuration (training.round_duration/round_unit), batchSize,
validationSplit, learningRate, inputColumns/outputColumn/categoricalColumns (TabularData), IMAGE_H/W and
LABEL_LIST (ImageData), maxSequenceLength and tokenizer (TextData), scheme, aggregationStrategy
(aggregator), minNbOfParticipants, clippingRadius and noiseScale (privacy). JSON goes through task_from_json,
which names every bad field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from py_shared.secure.precision import fixed_point_for
from py_shared.typed_json import JSON, from_json, to_json

Scheme = Literal["local", "federated", "decentralized"]
Aggregator = Literal["fedavg", "fedprox", "median", "trimmed_mean", "centered_clipping", "krum", "multi_krum"]
Optimizer = Literal["sgd", "adam", "adamw"]
Topology = Literal["mesh", "ring", "gossip"]
MISSING_TOKENS = ("", "NA", "N/A", "NaN", "nan", "null", "?")
MIN_CLIP_VALUE, MAX_CLIP_VALUE = 1e-9, 1e9  # secure.clip_value: beyond, the fixed-point codec's floats overflow


@dataclass(frozen=True, kw_only=True)
class TabularData:
    """A CSV with a header: numeric and categorical feature columns and one label column."""

    kind: Literal["tabular"] = "tabular"
    feature_columns: tuple[str, ...]
    label_column: str
    label_values: tuple[str, ...]  # the classes as written in the CSV, in output order
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column -> vocabulary
    normalize: bool = True  # standardise numeric columns with training-split statistics
    missing_tokens: tuple[str, ...] = MISSING_TOKENS

    def problems(self) -> Iterator[str]:
        if not self.feature_columns:
            yield "feature_columns: at least one column is needed"
        if len(set(self.feature_columns)) != len(self.feature_columns):
            yield "feature_columns: a column is listed twice"
        if self.label_column in self.feature_columns:
            yield f"label_column: {self.label_column!r} is also a feature column"
        if len(set(self.label_values)) < 2 or len(set(self.label_values)) != len(self.label_values):
            yield "label_values: at least two distinct classes are needed"
        for column, vocabulary in self.categorical.items():
            if column not in self.feature_columns:
                yield f"categorical.{column}: not one of the feature columns"
            if not vocabulary or len(set(vocabulary)) != len(vocabulary):
                yield f"categorical.{column}: the vocabulary must be non-empty and without repeats"

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """Feature columns read as numbers, in feature order."""
        return tuple(c for c in self.feature_columns if c not in self.categorical)

    @property
    def input_size(self) -> int:
        """Width of an encoded row: one per numeric column, one-hot per categorical value."""
        return sum(len(self.categorical[c]) if c in self.categorical else 1 for c in self.feature_columns)


@dataclass(frozen=True, kw_only=True)
class ImageData:
    """Images resized to width x height with 1 (grey) or 3 (RGB) channels, one label each."""

    kind: Literal["image"] = "image"
    width: int
    height: int
    channels: Literal[1, 3] = 1
    labels: tuple[str, ...]

    def problems(self) -> Iterator[str]:
        for name in ("width", "height"):
            if not 1 <= getattr(self, name) <= 1024:
                yield f"{name}: must be between 1 and 1024"
        if len(set(self.labels)) < 2 or len(set(self.labels)) != len(self.labels):
            yield "labels: at least two distinct labels are needed"


@dataclass(frozen=True, kw_only=True)
class TextData:
    """Plain text cut into windows of context_length tokens, for next-token prediction."""

    kind: Literal["text"] = "text"
    tokenizer: Literal["gpt2-bpe", "char"]
    context_length: int
    alphabet: str = ""  # the char tokenizer's characters; anything else maps to one "unknown" token

    def problems(self) -> Iterator[str]:
        if not 2 <= self.context_length <= 4096:
            yield "context_length: must be between 2 and 4096"
        if self.tokenizer == "char" and len(set(self.alphabet)) < 2:
            yield "alphabet: the char tokenizer needs at least two distinct characters"
        if len(set(self.alphabet)) != len(self.alphabet):
            yield "alphabet: a character is listed twice"


@dataclass(frozen=True, kw_only=True)
class MLPModel:
    """Fully connected layers with ReLU between them."""

    kind: Literal["mlp"] = "mlp"
    hidden: tuple[int, ...] = (64, 32)

    def problems(self) -> Iterator[str]:
        if any(h < 1 for h in self.hidden):
            yield "hidden: sizes must be positive"


@dataclass(frozen=True, kw_only=True)
class ConvLayer:
    """A same-padded convolution with ReLU, then max-pooling by `pool` (1: none)."""

    channels: int
    kernel: int = 3
    pool: int = 2

    def problems(self) -> Iterator[str]:
        if self.channels < 1:
            yield "channels: must be positive"
        if self.kernel < 1 or self.kernel % 2 == 0:
            yield "kernel: must be a positive odd number"
        if self.pool < 1:
            yield "pool: must be at least 1"


@dataclass(frozen=True, kw_only=True)
class CNNModel:
    """Convolution blocks, flattened into fully connected layers."""

    kind: Literal["cnn"] = "cnn"
    conv: tuple[ConvLayer, ...]
    dense: tuple[int, ...] = (64,)

    def problems(self) -> Iterator[str]:
        if not self.conv:
            yield "conv: at least one convolution layer is needed"
        if any(d < 1 for d in self.dense):
            yield "dense: sizes must be positive"


@dataclass(frozen=True, kw_only=True)
class GPTModel:
    """A decoder-only transformer with learnt positions and tied input/output embeddings."""

    kind: Literal["gpt"] = "gpt"
    layers: int = 2
    heads: int = 4
    embed: int = 64

    def problems(self) -> Iterator[str]:
        for name in ("layers", "heads", "embed"):
            if getattr(self, name) < 1:
                yield f"{name}: must be positive"
        if self.heads >= 1 and self.embed % self.heads:
            yield f"heads: {self.heads} heads do not divide embed={self.embed}"


DataSpec = TabularData | ImageData | TextData
ModelSpec = MLPModel | CNNModel | GPTModel


@dataclass(frozen=True, kw_only=True)
class Training:
    """Local training: its length, batching, optimizer, validation split, and how long a round is."""

    epochs: int = 10
    steps_per_epoch: int = 0  # 0: an epoch is one pass over the data; N: at most N steps (a budget, for big data)
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: Optimizer = "adam"
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    validation_fraction: float = 0.2
    round_duration: int = 1  # local work between two exchanges of weights ...
    round_unit: Literal["batches", "epochs"] = "epochs"  # ... counted in batches or epochs
    seed: int = 0  # initial weights, validation split and shuffling

    def problems(self) -> Iterator[str]:
        for name in ("epochs", "batch_size", "round_duration"):
            if getattr(self, name) < 1:
                yield f"{name}: must be at least 1"
        if not self.learning_rate > 0:
            yield "learning_rate: must be positive"
        if not 0 <= self.validation_fraction < 1:
            yield "validation_fraction: must be in [0, 1)"
        if not 0 <= self.momentum < 1:
            yield "momentum: must be in [0, 1)"
        if self.weight_decay < 0:
            yield "weight_decay: must not be negative"
        if self.steps_per_epoch < 0:
            yield "steps_per_epoch: must not be negative (0 means one pass over the data)"


@dataclass(frozen=True, kw_only=True)
class Privacy:
    """Differential privacy of each update: clip to L2 norm clip_norm, add N(0, (noise_multiplier*clip_norm)^2).

    Client-side (local) DP noises every update before it leaves the device; central DP trusts the server to clip
    each update and noise their mean.
    """

    clip_norm: float = 0.0  # 0: no clipping
    noise_multiplier: float = 0.0  # 0: no noise
    delta: float = 1e-5  # the delta of the reported (epsilon, delta)
    central: bool = False  # False: each client privatises its own update; True: the server does, on the sum
    # with secure aggregation: each client adds 1/n of the central noise's variance, so only the sum is noised
    # as central DP would noise it, and the server never sees an un-noised update
    distributed: bool = False

    def problems(self) -> Iterator[str]:
        for name in ("clip_norm", "noise_multiplier"):
            if getattr(self, name) < 0:
                yield f"{name}: must not be negative"
        if self.noise_multiplier > 0 and self.clip_norm <= 0:
            yield "noise_multiplier: noise needs a positive clip_norm (the noise scales with it)"
        if not 0 < self.delta < 1:
            yield "delta: must be in (0, 1)"
        if self.distributed and self.central:
            yield "distributed: central and distributed DP exclude each other"
        if self.distributed and self.noise_multiplier <= 0:
            yield "distributed: distributed DP needs a positive noise_multiplier"


@dataclass(frozen=True, kw_only=True)
class SecureAggregation:
    """Secure aggregation's knobs (used when the task's secure_aggregation is true); see py_shared/secure/."""

    clip_value: float = 1.0  # each coordinate of an update is clipped to [-clip_value, clip_value] to encode it
    max_participants: int = 100  # the most inputs one secure sum holds: with clip_value it fixes the precision
    threshold: float = 2 / 3  # share of a participant's group (itself and its neighbours) that rebuilds its secrets
    graph: Literal["complete", "sparse"] = "complete"  # mask with every other participant, or with a few
    neighbours: int = 0  # sparse: neighbours per participant (even); 0 picks 2 * ceil(log2 n)
    phase_timeout_s: float = 30.0  # who has not answered a phase by then has dropped

    def problems(self) -> Iterator[str]:
        if not 0.5 < self.threshold <= 1:
            yield "threshold: must be in (0.5, 1]: a smaller one would let a lying server open both secrets"
        if not 2 <= self.max_participants <= 1000:
            yield "max_participants: must be between 2 and 1000"
        if not self.clip_value > 0:
            yield "clip_value: must be positive"
        elif not MIN_CLIP_VALUE <= self.clip_value <= MAX_CLIP_VALUE:
            yield f"clip_value: must be between {MIN_CLIP_VALUE:g} and {MAX_CLIP_VALUE:g}"
        elif 2 <= self.max_participants <= 1000:  # otherwise said above (a huge count would overflow a float here)
            try:
                fixed_point_for(self.clip_value, self.max_participants)
            except ValueError as e:
                yield f"clip_value: {e}"
        if self.neighbours < 0 or self.neighbours % 2:
            yield "neighbours: must be an even number (0: automatic)"
        if self.neighbours and self.graph == "complete":
            yield "neighbours: only a sparse graph has a number of neighbours"
        if not self.phase_timeout_s > 0:
            yield "phase_timeout_s: must be positive"


@dataclass(frozen=True, kw_only=True)
class Federation:
    """How rounds close and the knobs of the robust aggregators (each used only by its aggregator)."""

    round_deadline_s: float = 0.0  # 0: a round waits for every participant; T: closes T s after its first update
    proximal_mu: float = 0.01  # fedprox: weight of the proximal term mu/2 * |w - w_global|^2
    trim_fraction: float = 0.2  # trimmed_mean: share of values dropped at each end, per coordinate
    clip_radius: float = 0.0  # centered_clipping: tau, the L2 radius around the center (0: the median offset norm)
    clip_iterations: int = 3  # centered_clipping: L, the number of re-centerings
    byzantine: int = 1  # krum / multi_krum: f, how many participants may be adversarial
    krum_select: int = 2  # multi_krum: m, how many of the best-scored updates are averaged

    def problems(self) -> Iterator[str]:
        if self.round_deadline_s < 0:
            yield "round_deadline_s: must not be negative"
        if self.proximal_mu < 0 or self.clip_radius < 0:
            yield "proximal_mu and clip_radius must not be negative"
        if not 0 <= self.trim_fraction < 0.5:
            yield "trim_fraction: must be in [0, 0.5)"
        if self.clip_iterations < 1 or self.byzantine < 0 or self.krum_select < 1:
            yield "clip_iterations and krum_select must be at least 1, byzantine at least 0"


@dataclass(frozen=True, kw_only=True)
class Decentralized:
    """How peers exchange models when the scheme is decentralized (pacing: federation.round_deadline_s)."""

    # mesh: every member sends its model to every other (n - 1 models each); ring: a running sum goes around the
    # members and its average comes back (about 3 models' bytes each, whatever n; 2n hops one after the other);
    # gossip: each member averages its model with those of `gossip_degree` neighbours, redrawn every round
    # (degree models each; the models agree only after several rounds)
    topology: Topology = "mesh"
    exchange_timeout_s: float = 60.0  # a round's connections and transfers; a member not done by then is left out
    gossip_degree: int = 0  # even; 0: about 2 log2(members), past which a random graph mixes like a complete one

    def problems(self) -> Iterator[str]:
        if self.gossip_degree < 0 or self.gossip_degree % 2:
            yield "gossip_degree: must be an even number (0: chosen from the number of members)"
        if not 1 <= self.exchange_timeout_s <= 3600:
            yield "exchange_timeout_s: must be between 1 and 3600"


@dataclass(frozen=True, kw_only=True)
class TaskDefinition:
    """Everything participants agree on before training together."""

    id: str
    title: str
    description: str = ""
    data: DataSpec
    model: ModelSpec
    training: Training = Training()
    scheme: Scheme = "local"
    min_participants: int = 1
    aggregator: Aggregator = "fedavg"
    federation: Federation = Federation()
    privacy: Privacy = Privacy()
    secure_aggregation: bool = False
    secure: SecureAggregation = SecureAggregation()
    decentralized: Decentralized = Decentralized()

    @property
    def data_type(self) -> str:
        """ "tabular", "image" or "text"."""
        return self.data.kind

    def problems(self) -> Iterator[str]:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", self.id):
            yield "id: use 1-64 lowercase letters, digits, '-' or '_'"
        if not self.title.strip():
            yield "title: must not be empty"
        if self.min_participants < 1:
            yield "min_participants: must be at least 1"
        if self.privacy.central and self.aggregator not in ("fedavg", "fedprox"):
            yield "privacy.central: server-side DP is calibrated for fedavg and fedprox only"
        if self.secure_aggregation and self.scheme == "local":
            yield "secure_aggregation: needs a federated or decentralized scheme"
        if self.secure_aggregation and self.aggregator not in ("fedavg", "fedprox"):
            yield "secure_aggregation: the server sees only the sum, so the aggregator must be fedavg or fedprox"
        if self.secure_aggregation and self.privacy.central:
            yield "secure_aggregation: the server cannot clip updates it cannot see; use privacy.distributed"
        if self.privacy.distributed and not self.secure_aggregation:
            yield "privacy.distributed: needs secure_aggregation (otherwise the server sees each noised update)"
        if self.scheme == "decentralized" and self.secure_aggregation and self.decentralized.topology == "gossip":
            yield "secure_aggregation: gossiping peers each average their own neighbours' models, with no one sum to "\
                  "hide them in: use the mesh or ring topology"  # fmt: skip
        if self.scheme == "decentralized" and (self.privacy.clip_norm > 0 or self.privacy.noise_multiplier > 0):
            yield "privacy: differential privacy between peers is not built yet: leave clip_norm and noise at 0"
        if self.secure_aggregation and not 2 <= self.min_participants <= self.secure.max_participants:
            yield "min_participants: a secure sum needs at least 2, and at most secure.max_participants"
        fits = {"tabular": ("mlp",), "image": ("cnn", "mlp"), "text": ("gpt",)}[self.data.kind]
        if self.model.kind not in fits:
            yield f"model.kind: a {self.model.kind!r} model cannot learn from {self.data.kind} data"


def task_from_json(data: JSON) -> TaskDefinition:
    """Validate and build a task from its JSON value; raises typed_json.ValidationError naming every problem."""
    return from_json(TaskDefinition, data, "task")


def task_to_json(task: TaskDefinition) -> JSON:
    """The task as a JSON value that task_from_json reads back identically."""
    return to_json(task)
