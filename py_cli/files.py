"""Reading a task and a participant's data from disk into py_shared's sources (images decoded with Pillow)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from py_shared.data.examples import DataError
from py_shared.data.images import LABELS_FILE, parse_labels_csv
from py_shared.task import ImageData, TaskDefinition, TextData, task_from_json
from py_shared.training.pipeline import CsvSource, DataSource, ImageSource, TextSource

ROOT = Path(__file__).resolve().parent.parent
GPT2_FILES = ROOT / "www" / "vendor" / "gpt2-tokenizer"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}


def read_task(path: Path) -> TaskDefinition:
    """A task definition from a JSON file (typed_json.ValidationError names every bad field)."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    return task_from_json(data)


def decode_image(path: Path, spec: ImageData) -> bytes:
    """RGBA bytes of an image file resized to the task's size; grey tasks read it as grey (R = G = B)."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = "L" if spec.channels == 1 else "RGB"
            resized = image.convert(mode).resize((spec.width, spec.height), Image.Resampling.BILINEAR)
            return resized.convert("RGBA").tobytes()
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: cannot be read as an image ({e})") from None


def image_files(folder: Path) -> list[tuple[Path, str]]:
    """(file, label) from a folder with labels.csv, or from one subfolder per label."""
    if (folder / LABELS_FILE).exists():
        labels = parse_labels_csv((folder / LABELS_FILE).read_text(), str(folder / LABELS_FILE))
        missing = [name for name in labels if not (folder / name).is_file()]
        if missing:
            raise DataError(f"{folder / LABELS_FILE} names {len(missing)} missing file(s), e.g. {missing[0]}")
        return [(folder / name, label) for name, label in labels.items()]
    found = [
        (p, sub.name)
        for sub in sorted(folder.iterdir())
        if sub.is_dir()
        for p in sorted(sub.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not found:
        raise DataError(f"{folder}: no {LABELS_FILE} and no subfolder of images (one per label)")
    return found


def read_source(task: TaskDefinition, path: Path) -> DataSource:
    """The data at `path` in the form the task's data type needs."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    kind = task.data.kind
    if kind == "image":
        assert isinstance(task.data, ImageData)
        if not path.is_dir():
            raise DataError(f"{path}: an image task needs a folder of images")
        return ImageSource([(p.name, label, decode_image(p, task.data)) for p, label in image_files(path)])
    if path.is_dir():
        raise DataError(f"{path}: a {kind} task needs a file, not a folder")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    if kind == "tabular":
        return CsvSource(path.name, text)
    assert isinstance(task.data, TextData)
    bpe = None
    if task.data.tokenizer == "gpt2-bpe":
        bpe = ((GPT2_FILES / "encoder.json").read_text(), (GPT2_FILES / "vocab.bpe").read_text())
    return TextSource(path.name, text, bpe)
