"""What a person sees of their data before training: its first rows (a table's), its first images with their
labels, or a text sample; the examples per label; and, when the data does not fit the task (a missing column, a
label the task does not know, a value that is not a number), why, in words, before any training starts. Read
with the same parsers as training, so the preview and the run never disagree; images are not decoded here."""

from __future__ import annotations

from dataclasses import dataclass

from py_shared.data.bundle import labelled_images
from py_shared.data.examples import DataError
from py_shared.data.sources import one_text_file
from py_shared.data.tabular import parse_csv
from py_shared.task import ImageData, TabularData, TaskDefinition

ROWS, IMAGES, TEXT_CHARS = 5, 8, 400


@dataclass(frozen=True)
class DataPreview:
    """A look at the data: `header` and `rows` (a table), `images` (file name, label, encoded image), `text` (a
    sample), `counts` (label, examples) in the task's order, and `problem` ("" when the data fits the task)."""

    summary: str
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    images: tuple[tuple[str, str, bytes], ...] = ()
    text: str = ""
    counts: tuple[tuple[str, int], ...] = ()
    problem: str = ""


def preview(task: TaskDefinition, files: dict[str, bytes]) -> DataPreview:
    """A preview of `files` (name -> contents) as data for `task`."""
    spec = task.data
    try:
        if isinstance(spec, ImageData):
            return _images(spec, files)
        name, text = one_text_file(spec.kind, files)
        if isinstance(spec, TabularData):
            return _table(spec, name, text)
        words = len(text.split())
        return DataPreview(f"{name}: {len(text):,} characters, {words:,} words", text=text[:TEXT_CHARS])
    except DataError as e:
        return DataPreview("", problem=str(e))


def _table(spec: TabularData, name: str, text: str) -> DataPreview:
    table = parse_csv(text, spec, name)  # the columns, labels and values, checked as training checks them
    counts = tuple((label, table.labels.count(k)) for k, label in enumerate(spec.label_values))
    skipped = f", {table.skipped_without_label} without a label left out" if table.skipped_without_label else ""
    return DataPreview(f"{name}: {len(table.rows):,} rows{skipped}", header=tuple(table.header),
                       rows=tuple(tuple(r) for r in table.rows[:ROWS]), counts=counts)  # fmt: skip


def _images(spec: ImageData, files: dict[str, bytes]) -> DataPreview:
    items = labelled_images(files)
    unknown = sorted({label for _, label, _ in items} - set(spec.labels))
    if unknown:
        raise DataError(f"label(s) {', '.join(unknown)} are not the task's: it knows {', '.join(spec.labels)}")
    labels = [label for _, label, _ in items]
    counts = tuple((label, labels.count(label)) for label in spec.labels)
    size = f"resized to {spec.width}x{spec.height}, {'grey' if spec.channels == 1 else 'colour'}"
    return DataPreview(f"{len(items):,} images ({size})", images=tuple(items[:IMAGES]), counts=counts)
