"""A file of examples to predict, with or without labels: each example is given a placeholder label so that it
is read exactly as for training (the same checks, the same standardisation), and keeps what identifies it (its
CSV cells, its image's path) for the predictions file. Reading shuffles examples (a seeded split); `file_order`
puts the predictions back in the file's order."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from py_shared.data.bundle import image_files
from py_shared.data.examples import DataError, split_indices
from py_shared.data.images import LABELS_FILE
from py_shared.data.sources import one_text_file
from py_shared.data.tabular import check_width, csv_rows, to_csv
from py_shared.task import ImageData, TabularData, TaskDefinition


@dataclass(frozen=True)
class PredictionInput:
    """The files to read (every example labelled with a placeholder), and each example's identifying cells."""

    files: dict[str, bytes]
    header: list[str]
    rows: list[list[str]]


def _csv_rows(files: dict[str, bytes], kind: str) -> tuple[str, list[list[str]]]:
    name, text = one_text_file(kind, files)
    rows = csv_rows(text)
    if not rows:
        raise DataError(f"{name}: the file is empty")
    return name, rows


def is_labelled(task: TaskDefinition, files: dict[str, bytes]) -> bool:
    """Whether the files say each example's class: a CSV with the label column; images with a labels.csv, or
    each in a folder named after one of the task's labels."""
    spec = task.data
    if isinstance(spec, TabularData):
        _, rows = _csv_rows(files, spec.kind)
        return spec.label_column in (h.strip() for h in rows[0])
    if isinstance(spec, ImageData):
        every, images = image_files(files)
        if any(posixpath.basename(p) == LABELS_FILE for p in every):
            return True
        return all(posixpath.basename(posixpath.dirname(p)) in spec.labels for p in images)
    raise DataError("a text task's model writes text; it does not predict classes")


def for_prediction(task: TaskDefinition, files: dict[str, bytes]) -> PredictionInput:
    """The examples of `files` (any label they carry is ignored), ready to be read as labelled data."""
    spec = task.data
    if isinstance(spec, TabularData):
        name, rows = _csv_rows(files, spec.kind)
        header = [h.strip() for h in rows[0]]
        keep = [i for i, h in enumerate(header) if h != spec.label_column]
        for line, row in enumerate(rows[1:], start=2):
            check_width(row, header, name, line)
        body = [[r[i] for i in keep] for r in rows[1:]]
        placeholder = [spec.label_values[0]]
        text = to_csv([header[i] for i in keep] + [spec.label_column], [r + placeholder for r in body])
        return PredictionInput({name: text.encode()}, [header[i] for i in keep], body)
    if isinstance(spec, ImageData):
        _, images = image_files(files)
        paths = sorted(images)
        labels = to_csv(["filename", "label"], [[p, spec.labels[0]] for p in paths]).encode()
        return PredictionInput({**images, LABELS_FILE: labels}, ["file"], [[p] for p in paths])
    raise DataError("a text task's model writes text; it does not predict classes")


def file_order(values: list[int], seed: int) -> list[int]:
    """Per-example values read with no validation split (shuffled by the task's seed), back in file order."""
    order, _ = split_indices(len(values), 0.0, seed)
    out = [0] * len(values)
    for position, index in enumerate(order):
        out[index] = values[position]
    return out
