"""The model zoo against numpy: forward passes on fixed weights, gradients against finite differences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from tinygrad import Tensor

from py_shared.models import build_model
from py_shared.models.base import Model
from py_shared.task import (
    CNNModel,
    ConvLayer,
    GPTModel,
    ImageData,
    MLPModel,
    TabularData,
    TaskDefinition,
    TextData,
)
from py_shared.weights import bytes_to_vector, layout, set_vector
from tests.py_shared import numpy_reference as ref

MLP_TASK = TaskDefinition(
    id="m",
    title="M",
    data=TabularData(feature_columns=("a", "b", "c"), label_column="y", label_values=("0", "1", "2")),
    model=MLPModel(hidden=(5, 4)),
)
CNN_TASK = TaskDefinition(
    id="c",
    title="C",
    data=ImageData(width=6, height=6, channels=2, labels=("a", "b", "c")),
    model=CNNModel(conv=(ConvLayer(channels=3, kernel=3, pool=2), ConvLayer(channels=2, kernel=1, pool=1)), dense=(4,)),
)
GPT_TASK = TaskDefinition(
    id="g",
    title="G",
    data=TextData(tokenizer="char", context_length=5, alphabet="abcdef"),
    model=GPTModel(layers=2, heads=2, embed=8),
)


def random_weights(model: Model, seed: int) -> list[np.ndarray]:
    """Fixed float32 weights (as float64 arrays) loaded into the model."""
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(0, 0.5, s.shape).astype(np.float32) for s in layout(model)]
    set_vector(model, bytes_to_vector(b"".join(a.tobytes() for a in arrays)))
    return [a.astype(np.float64) for a in arrays]


def inputs_for(task: TaskDefinition, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if task is GPT_TASK:
        tokens = rng.integers(0, 7, size=(3, 5))
        return tokens, rng.integers(0, 7, size=(3, 5))
    shape = (4, 3) if task is MLP_TASK else (4, 2, 6, 6)
    return rng.normal(size=shape), rng.integers(0, 3, size=4)


def reference(task: TaskDefinition) -> Callable[[np.ndarray, list[np.ndarray]], np.ndarray]:
    if task is MLP_TASK:
        return ref.mlp
    if task is CNN_TASK:
        return lambda x, p: ref.cnn(x, p, [2, 1])
    return lambda x, p: ref.gpt(x, p, layers=2, heads=2)


def as_tensor(task: TaskDefinition, x: np.ndarray) -> Tensor:
    return Tensor(x.astype(np.int32)) if task is GPT_TASK else Tensor(x.astype(np.float32))


@pytest.mark.parametrize("task", [MLP_TASK, CNN_TASK, GPT_TASK], ids=lambda t: t.model.kind)
def test_forward_matches_numpy(task: TaskDefinition) -> None:
    model = build_model(task)
    params = random_weights(model, 1)
    x, _ = inputs_for(task, np.random.default_rng(2))
    got = model(as_tensor(task, x)).numpy()
    np.testing.assert_allclose(got, reference(task)(x, params), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("task", [MLP_TASK, CNN_TASK, GPT_TASK], ids=lambda t: t.model.kind)
def test_gradients_match_finite_differences(task: TaskDefinition) -> None:
    model = build_model(task)
    params = random_weights(model, 3)
    x, y = inputs_for(task, np.random.default_rng(4))
    logits = model(as_tensor(task, x))
    loss = logits.reshape(-1, logits.shape[-1]).sparse_categorical_crossentropy(Tensor(y.reshape(-1).astype(np.int32)))
    tensors = loss.gradient(*model.parameters())
    Tensor.realize(*tensors)  # one schedule for all of them
    grads = [g.numpy().astype(np.float64) for g in tensors]
    forward = reference(task)
    rng, eps = np.random.default_rng(5), 1e-6
    for p, g in zip(params, grads, strict=True):
        for flat_index in rng.choice(p.size, size=min(4, p.size), replace=False):
            idx = np.unravel_index(flat_index, p.shape)
            saved = p[idx]
            p[idx] = saved + eps
            up = ref.cross_entropy(forward(x, params), y)
            p[idx] = saved - eps
            down = ref.cross_entropy(forward(x, params), y)
            p[idx] = saved
            assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=2e-2, abs=2e-4)


def test_initialisation_is_deterministic_and_documented_in_order() -> None:
    a, b = build_model(CNN_TASK), build_model(CNN_TASK)
    assert [n for n, _ in a.named_parameters()] == [
        "conv.0.weight",
        "conv.0.bias",
        "conv.1.weight",
        "conv.1.bias",
        "dense.0.weight",
        "dense.0.bias",
        "dense.1.weight",
        "dense.1.bias",
    ]
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert p.tolist() == q.tolist()
    names = [n for n, _ in build_model(GPT_TASK).named_parameters()]
    assert names[:3] == ["tok_emb", "pos_emb", "blocks.0.ln1.weight"] and names[-1] == "ln_f.bias"
    assert len(names) == 2 + 12 * 2 + 2


def test_a_stack_that_pools_to_nothing_is_refused() -> None:
    tiny = TaskDefinition(
        id="t",
        title="T",
        data=ImageData(width=3, height=3, labels=("a", "b")),
        model=CNNModel(conv=(ConvLayer(channels=2), ConvLayer(channels=2))),
    )
    with pytest.raises(ValueError, match="pools 3x3 images down to nothing"):
        build_model(tiny)
