"""Writing example data: deterministic zips of PNG images with their labels.csv, and each task's manifest."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same source gives the same zip


@dataclass(frozen=True)
class Manifest:
    """What a task's example data is; the server serves `file` as the task's example data."""

    file: str
    media_type: str
    summary: str
    source: str
    licence: str


def write_manifest(folder: Path, manifest: Manifest) -> None:
    (folder / "MANIFEST.json").write_text(json.dumps(asdict(manifest), indent=1) + "\n")


def png_bytes(image: Image.Image) -> bytes:
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
