"""Writing images as the CLI and the page read them: a deterministic zip of PNGs with their labels.csv."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same source gives the same zip


def png_bytes(image: Image.Image) -> bytes:
    """The image as PNG bytes, written the same way every time."""
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def write_image_zip(path: Path, images: Iterable[tuple[str, str, Image.Image]]) -> int:
    """A zip holding labels.csv (filename,label) and one PNG per (name, label, image); returns the count."""
    rows, count = ["filename,label"], 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
        for name, label, image in images:
            zf.writestr(zipfile.ZipInfo(name, _EPOCH), png_bytes(image))
            rows.append(f"{name},{label}")
            count += 1
        zf.writestr(zipfile.ZipInfo("labels.csv", _EPOCH), ("\n".join(rows) + "\n").encode())
    return count
