"""`python -m py_cli split`: divide a task's data among N simulated clients and write one file per client."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from py_cli.image_zip import write_image_zip
from py_shared.data.sources import CsvSource, DataSource, ImageSource, TextSource
from py_shared.data.splits import label_counts
from py_shared.task import ImageData, TaskDefinition


def write_client(task: TaskDefinition, source: DataSource, folder: Path, client: int) -> Path:
    """Write one client's part as the user would connect it: a CSV, a zip of PNGs with labels.csv, or a text."""
    if isinstance(source, (CsvSource, TextSource)):
        path = folder / source.name
        path.write_text(source.text)
        return path
    assert isinstance(source, ImageSource) and isinstance(task.data, ImageData)
    spec = task.data
    mode = "L" if spec.channels == 1 else "RGB"
    path = folder / f"client-{client}.zip"
    images = (
        (name, label, Image.frombytes("RGBA", (spec.width, spec.height), rgba).convert(mode))
        for name, label, rgba in source.items
    )
    write_image_zip(path, images)
    return path


def table(task: TaskDefinition, parts: list[DataSource]) -> str:
    """A plain table: examples per client and per class."""
    rows = []
    for c, part in enumerate(parts):
        counts = label_counts(task, part)
        size = sum(counts) if counts else len(part.text) if isinstance(part, TextSource) else 0
        unit = "examples" if counts else "characters"
        rows.append(f"client {c:>3}: {size:>7} {unit}" + (f"  per class {counts}" if counts else ""))
    return "\n".join(rows)
