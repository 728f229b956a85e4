"""The Gaussian mechanism on a flat update: clip its L2 norm to C, add N(0, (z * C)^2) to every coordinate.

The clip applies to the update (new weights minus the received global weights), never to the weights
themselves, and the noise's standard deviation is z * C (DISCO used it as the variance). The noise key comes
from the operating system's CSPRNG, not from the task's seed, so nobody can regenerate and subtract it.
"""

from __future__ import annotations

import secrets

from tinygrad import Tensor, dtypes


def l2_norm(vector: Tensor) -> Tensor:
    """The Euclidean norm of a 1-D vector (a 0-d Tensor)."""
    return (vector * vector).sum().sqrt()


def clip_to_norm(update: Tensor, clip_norm: float) -> Tensor:
    """`update` scaled down to L2 norm `clip_norm` if it is longer; unchanged otherwise."""
    return update * (clip_norm / l2_norm(update).maximum(1e-12)).minimum(1.0)


def gaussian_noise(size: int, std: float, device: str | None = None) -> Tensor:
    """`size` independent N(0, std^2) values, drawn with a fresh secret key (threefry counter mode, Box-Muller)."""
    key = Tensor([secrets.randbits(32), secrets.randbits(32)], device=device, dtype=dtypes.uint32)
    counter = Tensor([0, 0], device=device, dtype=dtypes.uint32)
    u = Tensor._rand(key, counter, (2, size), dtypes.float32)
    return (u[0] * (2 * 3.141592653589793)).cos() * ((1 - u[1]).log() * -2).sqrt() * std


def privatize(update: Tensor, clip_norm: float, noise_multiplier: float) -> Tensor:
    """Clip `update` to `clip_norm` (if > 0), then add Gaussian noise of std noise_multiplier * clip_norm (if > 0)."""
    if clip_norm > 0:
        update = clip_to_norm(update, clip_norm)
    if noise_multiplier > 0:
        update = update + gaussian_noise(update.shape[0], noise_multiplier * clip_norm, update.device)  # type: ignore[arg-type]
    return update.realize()
