"""Weights as one flat float32 vector and as bytes, and the safetensors format, checked bit for bit."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import safetensors.numpy
from tinygrad import Tensor

from py_shared.models import build_model
from py_shared.safetensors_file import decode, encode, load_safetensors, model_to_safetensors
from py_shared.task import TaskDefinition
from py_shared.weights import (
    bytes_to_vector,
    get_vector,
    layout,
    load_bytes,
    model_to_bytes,
    set_vector,
    vector_size,
)
from tests.py_shared.test_models import CNN_TASK, GPT_TASK, MLP_TASK


def test_codec_round_trip_is_bit_exact() -> None:
    source, target = build_model(CNN_TASK), build_model(CNN_TASK)
    set_vector(target, Tensor.zeros(vector_size(target)))
    blob = model_to_bytes(source)
    assert len(blob) == 4 * vector_size(source)
    load_bytes(target, blob)
    assert model_to_bytes(target) == blob
    for (_, p), (_, q) in zip(source.named_parameters(), target.named_parameters(), strict=True):
        assert p.numpy().tobytes() == q.numpy().tobytes()


def test_special_values_survive_bytes() -> None:
    values = [0.0, -0.0, 1e-45, 3.4028235e38, float("inf"), -float("inf"), 1 / 3]
    raw = struct.pack(f"<{len(values)}f", *values) + struct.pack("<I", 0x7FC00001)  # a NaN with a payload
    assert bytes(bytes_to_vector(raw).data()) == raw


def test_vector_follows_the_documented_layout() -> None:
    model = build_model(MLP_TASK)
    flat = np.frombuffer(model_to_bytes(model), dtype="<f4")
    for slot, (name, p) in zip(layout(model), model.named_parameters(), strict=True):
        assert slot.name == name
        np.testing.assert_array_equal(flat[slot.offset : slot.offset + slot.size].reshape(slot.shape), p.numpy())


def test_wrong_sizes_are_refused_clearly() -> None:
    model = build_model(MLP_TASK)
    with pytest.raises(ValueError, match=r"expected \d+ float32 values"):
        load_bytes(model, b"\x00" * 8)
    with pytest.raises(ValueError, match="not a whole number of float32"):
        bytes_to_vector(b"\x00" * 6)
    with pytest.raises(ValueError, match="the vector has shape"):
        set_vector(model, Tensor.zeros(3))


def test_loaded_weights_reach_a_captured_jit() -> None:
    """The DESIGN trap: weights loaded after TinyJit captured must be the ones the replay computes with."""
    from tinygrad import TinyJit

    model = build_model(MLP_TASK)
    x = Tensor.ones(2, 3).contiguous().realize()
    forward = TinyJit(lambda x: model(x).realize())
    for _ in range(3):
        forward(x)
    set_vector(model, Tensor.zeros(vector_size(model)))
    assert forward(x).tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


@pytest.mark.parametrize("task", [MLP_TASK, CNN_TASK, GPT_TASK], ids=lambda t: t.model.kind)
def test_safetensors_are_read_by_the_safetensors_package(task: TaskDefinition) -> None:
    model = build_model(task)
    loaded = safetensors.numpy.load(model_to_safetensors(model, {"task": task.id}))
    assert set(loaded) == {n for n, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        assert loaded[name].dtype == np.float32
        np.testing.assert_array_equal(loaded[name], p.numpy())


def test_safetensors_written_by_the_package_load_into_our_model() -> None:
    source, target = build_model(MLP_TASK), build_model(MLP_TASK)
    set_vector(target, Tensor.zeros(vector_size(target)))
    blob = safetensors.numpy.save({n: p.numpy() for n, p in source.named_parameters()}, metadata={"by": "them"})
    assert load_safetensors(target, blob) == {"by": "them"}
    assert model_to_bytes(target) == model_to_bytes(source)


def test_malformed_safetensors_are_refused() -> None:
    model = build_model(MLP_TASK)
    with pytest.raises(ValueError, match="shorter than"):
        decode(b"\x01")
    with pytest.raises(ValueError, match="header length is out of range"):
        decode(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(ValueError, match="unreadable header"):
        decode(struct.pack("<Q", 4) + b"nope")
    wrong_shape = encode([(n, (1, s.size), b"\x00" * 4 * s.size) for s in layout(model) for n in [s.name]])
    with pytest.raises(ValueError, match=r"layers.0.weight: expected F32 \(5, 3\)"):
        load_safetensors(model, wrong_shape)
    with pytest.raises(ValueError, match="missing"):
        load_safetensors(model, encode([("other", (1,), b"\x00" * 4)]))
    assert get_vector(model).shape == (vector_size(model),)
