"""Plain numpy (float64) versions of the zoo's models and loss, to check tinygrad's against."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def linear(x: Array, w: Array, b: Array) -> Array:
    return x @ w.T + b


def mlp(x: Array, params: list[Array]) -> Array:
    x = x.reshape(len(x), -1)
    layers = list(zip(params[0::2], params[1::2], strict=True))
    for i, (w, b) in enumerate(layers):
        x = linear(x, w, b)
        if i < len(layers) - 1:
            x = np.maximum(x, 0)
    return x


def conv2d_same(x: Array, w: Array, b: Array) -> Array:
    """Cross-correlation with zero padding k//2, stride 1: (n, c, h, w) * (o, c, k, k) -> (n, o, h, w)."""
    n, _, h, wd = x.shape
    o, _, k, _ = w.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((n, o, h, wd))
    for i in range(k):
        for j in range(k):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
    return out + b.reshape(1, -1, 1, 1)


def max_pool(x: Array, k: int) -> Array:
    n, c, h, w = x.shape
    h2, w2 = h // k, w // k
    return x[:, :, : h2 * k, : w2 * k].reshape(n, c, h2, k, w2, k).max(axis=(3, 5))


def cnn(x: Array, params: list[Array], pools: list[int]) -> Array:
    for i, pool in enumerate(pools):
        x = np.maximum(conv2d_same(x, params[2 * i], params[2 * i + 1]), 0)
        if pool > 1:
            x = max_pool(x, pool)
    return mlp(x.reshape(len(x), -1), params[2 * len(pools) :])


def layer_norm(x: Array, w: Array, b: Array) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * w + b


def gelu(x: Array) -> Array:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def gpt(tokens: NDArray[np.int64], params: list[Array], layers: int, heads: int) -> Array:
    tok, pos = params[0], params[1]
    batch, time = tokens.shape
    d = tok.shape[1]
    x = tok[tokens] + pos[:time]
    mask = np.tril(np.ones((time, time), dtype=bool))
    for layer in range(layers):
        p = params[2 + 12 * layer : 2 + 12 * (layer + 1)]
        ln1w, ln1b, qkvw, qkvb, pw, pb, ln2w, ln2b, fcw, fcb, mpw, mpb = p
        q, k, v = np.split(linear(layer_norm(x, ln1w, ln1b), qkvw, qkvb), 3, axis=-1)
        q, k, v = (t.reshape(batch, time, heads, d // heads).transpose(0, 2, 1, 3) for t in (q, k, v))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // heads)
        scores = np.where(mask, scores, -np.inf)
        attn = np.exp(scores - scores.max(-1, keepdims=True))
        attn /= attn.sum(-1, keepdims=True)
        y = (attn @ v).transpose(0, 2, 1, 3).reshape(batch, time, d)
        x = x + linear(y, pw, pb)
        x = x + linear(gelu(linear(layer_norm(x, ln2w, ln2b), fcw, fcb)), mpw, mpb)
    return layer_norm(x, params[-2], params[-1]) @ tok.T


def cross_entropy(logits: Array, labels: NDArray[np.int64]) -> float:
    flat = logits.reshape(-1, logits.shape[-1])
    shifted = flat - flat.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return float(-log_probs[np.arange(len(flat)), labels.reshape(-1)].mean())
