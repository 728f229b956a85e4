"""Text from a trained GPT: a prompt's continuation, one token at a time, sampled at a temperature.

Every step feeds the model one window of the task's full context length, the tokens so far at its start and
padding after them: causal attention keeps the padding from reaching the last real position, and one shape means
the GPU's kernels are compiled once, not once per length. Sampling is plain Python over the last position's
logits, so a seed gives the same text on every platform that computes the same logits."""

from __future__ import annotations

import math
import random

from tinygrad import Tensor

from py_shared.data.text import Tokenizer
from py_shared.models.base import Model

MAX_NEW_TOKENS = 500


def next_token(logits: list[float], temperature: float, rng: random.Random) -> int:
    """A token drawn from softmax(logits / temperature); at temperature 0, the most likely one."""
    if temperature <= 0:
        return max(range(len(logits)), key=logits.__getitem__)
    top = max(logits)
    weights = [math.exp((x - top) / temperature) for x in logits]
    point, total = rng.random() * sum(weights), 0.0
    for token, weight in enumerate(weights):
        total += weight
        if point < total:
            return token
    return len(weights) - 1


def generate(
    model: Model, tokenizer: Tokenizer, context: int, prompt: str, new_tokens: int, temperature: float, seed: int = 0
) -> str:
    """The prompt's continuation (without the prompt): `new_tokens` tokens at `temperature`."""
    if not 1 <= new_tokens <= MAX_NEW_TOKENS:
        raise ValueError(f"the length must be from 1 to {MAX_NEW_TOKENS} tokens")
    if not 0 <= temperature <= 10 or math.isnan(temperature):
        raise ValueError("the temperature must be from 0 (always the likeliest) to 10")
    ids = tokenizer.encode(prompt) or tokenizer.encode(" ") or [0]
    rng = random.Random(seed)
    made: list[int] = []
    for _ in range(new_tokens):
        window = (ids + made)[-context:]
        padded = window + [0] * (context - len(window))
        # the last real position's logits, picked by a one-hot input rather than an index: the same kernels each step
        last = Tensor([[1.0 if k == len(window) - 1 else 0.0 for k in range(context)]])
        logits = (model(Tensor([padded])) * last.unsqueeze(-1)).sum(1)[0].tolist()
        made.append(next_token(logits, temperature, rng))  # type: ignore[arg-type]
    return tokenizer.decode(made)
