"""Read and write the safetensors format (float32 tensors) by hand: tinygrad's safe_save needs a CPU compiler,
which the browser does not have. Format: 8-byte little-endian header length, a JSON header mapping names to
dtype, shape and data offsets, then the raw little-endian data."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

from py_shared.models.base import Model
from py_shared.weights import Slot, bytes_to_vector, layout, model_to_bytes, set_vector

MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class StoredTensor:
    """One tensor of a safetensors file: its dtype name, shape and raw bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes


def encode(tensors: list[tuple[str, tuple[int, ...], bytes]], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file of float32 tensors given as (name, shape, little-endian bytes), in this order."""
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, shape, data in tensors:
        if len(data) != 4 * math.prod(shape):
            raise ValueError(f"{name}: {len(data)} bytes do not hold a float32 tensor of shape {shape}")
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keeps the data 8-byte aligned, as the reference writer does
    return struct.pack("<Q", len(raw)) + raw + b"".join(data for _, _, data in tensors)


def decode(blob: bytes) -> tuple[dict[str, StoredTensor], dict[str, str]]:
    """(tensors by name, metadata) of a safetensors file; raises ValueError on a malformed one."""
    if len(blob) < 8:
        raise ValueError("not a safetensors file: shorter than its 8-byte header length")
    (size,) = struct.unpack("<Q", blob[:8])
    if size > min(MAX_HEADER, len(blob) - 8):
        raise ValueError("not a safetensors file: its header length is out of range")
    try:
        header = json.loads(blob[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not a safetensors file: unreadable header ({e})") from None
    metadata = header.pop("__metadata__", None) or {}
    body = blob[8 + size :]
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        if not 0 <= start <= end <= len(body):
            raise ValueError(f"{name}: data offsets {start}..{end} fall outside the file")
        tensors[name] = StoredTensor(info["dtype"], tuple(info["shape"]), body[start:end])
    return tensors, metadata


def flat_to_safetensors(slots: list[Slot], flat: bytes, metadata: dict[str, str] | None = None) -> bytes:
    """A flat vector's bytes as a safetensors file with one named tensor per slot of the model's layout."""
    return encode([(s.name, s.shape, flat[4 * s.offset : 4 * (s.offset + s.size)]) for s in slots], metadata)


def safetensors_to_flat(slots: list[Slot], blob: bytes) -> tuple[bytes, dict[str, str]]:
    """The flat vector's bytes stored in a safetensors file (names and shapes must match `slots`), and metadata."""
    tensors, metadata = decode(blob)
    missing = [s.name for s in slots if s.name not in tensors]
    extra = sorted(set(tensors) - {s.name for s in slots})
    if missing or extra:
        raise ValueError(
            f"the file does not fit this model: missing {missing or 'nothing'}, unexpected {extra or 'nothing'}"
        )
    parts = []
    for s in slots:
        t = tensors[s.name]
        if t.dtype != "F32" or t.shape != s.shape:
            raise ValueError(f"{s.name}: expected F32 {s.shape}, the file has {t.dtype} {t.shape}")
        parts.append(t.data)
    return b"".join(parts), metadata


def model_to_safetensors(model: Model, metadata: dict[str, str] | None = None) -> bytes:
    """The model's parameters as a safetensors file, named as in model.named_parameters()."""
    return flat_to_safetensors(layout(model), model_to_bytes(model), metadata)


def load_safetensors(model: Model, blob: bytes) -> dict[str, str]:
    """Load a safetensors file into the model (names and shapes must match); returns its metadata."""
    flat, metadata = safetensors_to_flat(layout(model), blob)
    set_vector(model, bytes_to_vector(flat, model.parameters()[0].device))
    return metadata
