"""Writing example data: each task's manifest; image zips are written by py_cli.image_zip, as `py_cli split`
writes its clients' parts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


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
