"""Images: decoded pixels (by the platform: canvas in the browser, Pillow on CPython) checked and packed.

The platform hands over each image already resized to the task's width x height, as 8-bit RGBA; this module
keeps the task's channels (grey images are expected to be decoded grey, so R = G = B), checks labels, and
packs everything as uint8 (height, width, channels) examples. Scaling to [0, 1] happens on the device.
"""

from __future__ import annotations

from py_shared.data.examples import DataError, Examples
from py_shared.data.tabular import csv_rows
from py_shared.task import ImageData

LABELS_FILE = "labels.csv"


def rgba_to_channels(rgba: bytes, channels: int) -> bytes:
    """Keep R (grey) or R, G, B from interleaved RGBA bytes; slicing keeps this at C speed."""
    if channels == 1:
        return rgba[0::4]
    out = bytearray(len(rgba) // 4 * 3)
    out[0::3], out[1::3], out[2::3] = rgba[0::4], rgba[1::4], rgba[2::4]
    return bytes(out)


def parse_labels_csv(text: str, name: str = LABELS_FILE) -> dict[str, str]:
    """A labels file: a header naming a file column and a label column, then one row per image."""
    rows = csv_rows(text)
    if len(rows) < 2:
        raise DataError(f"{name}: expected a header (filename,label) and at least one row")
    header = [h.strip().lower() for h in rows[0]]
    try:
        file_col = next(i for i, h in enumerate(header) if h in ("filename", "file", "image", "path"))
        label_col = next(i for i, h in enumerate(header) if h in ("label", "class", "target"))
    except StopIteration:
        raise DataError(f"{name}: the header must name a 'filename' and a 'label' column, got {rows[0]}") from None
    labels = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) <= max(file_col, label_col):
            raise DataError(f"{name}, line {line}: expected a filename and a label")
        labels[row[file_col].strip()] = row[label_col].strip()
    return labels


def assemble_images(items: list[tuple[str, str, bytes]], spec: ImageData) -> Examples:
    """(file name, label, RGBA pixels at the task's size) per image -> uint8 examples of (h, w, channels)."""
    if not items:
        raise DataError("no images were given")
    index = {label: i for i, label in enumerate(spec.labels)}
    expected = spec.width * spec.height * 4
    pixels, labels = [], []
    for name, label, rgba in items:
        if label not in index:
            raise DataError(f"{name}: label {label!r} is not one of {', '.join(spec.labels)}")
        if len(rgba) != expected:
            raise DataError(f"{name}: decoded to {len(rgba)} bytes, expected {spec.width}x{spec.height} RGBA")
        pixels.append(rgba_to_channels(rgba, spec.channels))
        labels.append(index[label])
    return Examples(b"".join(pixels), "uint8", (spec.height, spec.width, spec.channels), tuple(labels))
