"""Training data uploaded to the device once; batches are gathered there, inside the TinyJit step.

Classification examples are padded to a whole number of evaluation chunks, with a mask, so that evaluation
is one captured kernel sequence too. Images stay uint8 on the device and are scaled to [0, 1] per batch.
"""

from __future__ import annotations

import array
from typing import Any

from tinygrad import Tensor, dtypes

from py_shared.data.examples import Examples
from py_shared.data.text import TokenStream

EVAL_CHUNK = 256


def int32_tensor(values: list[int]) -> Tensor:
    """Host ints -> an int32 device tensor, through bytes (much faster than from a list)."""
    return Tensor(array.array("i", values).tobytes()).bitcast(dtypes.int32).contiguous()


class DeviceExamples:
    """Examples (tabular float32 or image uint8) and labels resident on the device."""

    def __init__(self, examples: Examples, chunk: int = EVAL_CHUNK) -> None:
        self.count = len(examples)
        self.chunk = max(1, min(chunk, self.count))
        padded = -(-self.count // self.chunk) * self.chunk
        pad = padded - self.count
        features = examples.features + bytes(pad * examples.example_bytes)
        raw = Tensor(features)
        x = raw if examples.dtype == "uint8" else raw.bitcast(dtypes.float32)
        self.image = examples.dtype == "uint8"
        self.x = x.reshape(padded, *examples.shape).contiguous().realize()
        self.y = int32_tensor([*examples.labels, *([0] * pad)]).realize()
        self.mask = Tensor([1.0] * self.count + [0.0] * pad).contiguous().realize()
        self.chunks = padded // self.chunk

    def inputs(self, x: Tensor) -> Tensor:
        """Model inputs for gathered raw examples: images become float (N, C, H, W) in [0, 1]."""
        return x.cast(dtypes.float32).div(255.0).permute(0, 3, 1, 2) if self.image else x

    def rows(self, index: Any) -> tuple[Tensor, Tensor]:
        """(inputs, labels) of the examples at a tensor of indices."""
        return self.inputs(self.x[index]), self.y[index]

    def chunk_rows(self, i: Any) -> tuple[Tensor, Tensor, Tensor]:
        """(inputs, labels, mask) of evaluation chunk i (a bound Variable)."""
        lo = i * self.chunk
        return (
            self.inputs(self.x[lo : lo + self.chunk]),
            self.y[lo : lo + self.chunk],
            self.mask[lo : lo + self.chunk],
        )


class DeviceTokens:
    """A token stream resident on the device, read as windows of context + 1 tokens."""

    def __init__(self, stream: TokenStream, context: int, chunk: int = 64) -> None:
        self.context, self.count = context, len(stream)
        self.tokens = Tensor(stream.tokens).bitcast(dtypes.int32).contiguous().realize()
        # evaluation: non-overlapping windows, padded to whole chunks of window starts (masked)
        starts = list(range(0, self.count - context - 1, context)) or [0]
        self.windows = len(starts)
        self.chunk = max(1, min(chunk, len(starts)))
        pad = -len(starts) % self.chunk
        self.starts = int32_tensor(starts + [0] * pad).realize()
        self.mask = Tensor([1.0] * len(starts) + [0.0] * pad).contiguous().realize()
        self.chunks = (len(starts) + pad) // self.chunk

    def windows_at(self, starts: Tensor) -> tuple[Tensor, Tensor]:
        """(inputs, next-token targets), each (batch, context), of the windows beginning at `starts`."""
        positions = starts.reshape(-1, 1) + Tensor.arange(self.context + 1).reshape(1, -1)
        window = self.tokens[positions]
        return window[:, :-1], window[:, 1:]

    def random_windows(self, batch: int) -> tuple[Tensor, Tensor]:
        """A batch of windows at random offsets, drawn on the device."""
        return self.windows_at(Tensor.randint(batch, high=self.count - self.context - 1))

    def chunk_windows(self, i: Any) -> tuple[Tensor, Tensor, Tensor]:
        """(inputs, targets, mask) of evaluation chunk i (a bound Variable)."""
        lo = i * self.chunk
        x, y = self.windows_at(self.starts[lo : lo + self.chunk])
        return x, y, self.mask[lo : lo + self.chunk]
