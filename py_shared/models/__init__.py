"""The model zoo: a tinygrad model built from a task's model spec, initialised deterministically from its seed."""

from __future__ import annotations

import math

from tinygrad import Tensor

from py_shared.data.text import vocab_size
from py_shared.models.base import Model
from py_shared.models.cnn import CNN
from py_shared.models.gpt import GPT
from py_shared.models.mlp import MLP
from py_shared.task import CNNModel, GPTModel, ImageData, MLPModel, TabularData, TaskDefinition, TextData

__all__ = ["CNN", "GPT", "MLP", "Model", "build_model"]


def build_model(task: TaskDefinition) -> Model:
    """The task's model with weights drawn from tinygrad's generator seeded by task.training.seed."""
    Tensor.manual_seed(task.training.seed)
    model = _unrealized(task)
    Tensor.realize(*model.parameters())
    return model


def parameter_count(task: TaskDefinition) -> int:
    """How many values the task's model has, found without computing any of them."""
    return sum(math.prod(int(d) for d in p.shape) for p in _unrealized(task).parameters())


def _unrealized(task: TaskDefinition) -> Model:
    data, spec = task.data, task.model
    model: Model
    if isinstance(spec, MLPModel) and isinstance(data, TabularData):
        model = MLP(data.input_size, spec.hidden, len(data.label_values))
    elif isinstance(spec, MLPModel) and isinstance(data, ImageData):
        model = MLP(data.channels * data.height * data.width, spec.hidden, len(data.labels))
    elif isinstance(spec, CNNModel) and isinstance(data, ImageData):
        model = CNN((data.channels, data.height, data.width), spec.conv, spec.dense, len(data.labels))
    elif isinstance(spec, GPTModel) and isinstance(data, TextData):
        model = GPT(vocab_size(data), data.context_length, spec.layers, spec.heads, spec.embed)
    else:
        raise ValueError(f"a {spec.kind} model cannot learn from {data.kind} data")
    return model
