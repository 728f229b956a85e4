"""Text generation from a GPT: the padded window gives the logits of the unpadded one, sampling follows the
temperature, and a seed repeats the text."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
from tinygrad import Tensor

from py_shared.data.text import CharTokenizer
from py_shared.models.gpt import GPT
from py_shared.training.generation import generate, next_token

ALPHABET = "abcdefgh "


def small_gpt(context: int = 8) -> GPT:
    Tensor.manual_seed(3)
    return GPT(vocab=len(ALPHABET) + 1, context=context, layers=1, heads=2, embed=16)


def test_greedy_text_is_what_the_unpadded_windows_predict() -> None:
    model, tokenizer = small_gpt(), CharTokenizer(ALPHABET)
    text = generate(model, tokenizer, 8, "abc", 6, temperature=0)
    ids = tokenizer.encode("abc")
    for _ in range(6):  # the reference: each window as it is, its last position's argmax
        window = ids[-8:]
        ids.append(int(np.argmax(model(Tensor([window])).numpy()[0, -1])))
    assert text == tokenizer.decode(ids[3:])


def test_a_seed_repeats_the_text_and_another_changes_it() -> None:
    model, tokenizer = small_gpt(), CharTokenizer(ALPHABET)
    first = generate(model, tokenizer, 8, "ab", 12, temperature=1.5, seed=1)
    assert first == generate(model, tokenizer, 8, "ab", 12, temperature=1.5, seed=1)
    assert len(first) == 12
    assert first != generate(model, tokenizer, 8, "ab", 12, temperature=1.5, seed=2)


def test_sampling_follows_softmax_at_the_temperature() -> None:
    logits, temperature, rng = [0.0, 1.0, 2.0], 0.7, random.Random(0)
    drawn = Counter(next_token(logits, temperature, rng) for _ in range(20000))
    weights = [math.exp(x / temperature) for x in logits]
    for token, weight in enumerate(weights):
        assert abs(drawn[token] / 20000 - weight / sum(weights)) < 0.015
    assert next_token(logits, 0, rng) == 2


@pytest.mark.parametrize(("length", "temperature"), [(0, 1.0), (501, 1.0), (5, -1.0), (5, float("nan"))])
def test_out_of_range_settings_are_refused(length: int, temperature: float) -> None:
    with pytest.raises(ValueError):
        generate(small_gpt(), CharTokenizer(ALPHABET), 8, "a", length, temperature)
