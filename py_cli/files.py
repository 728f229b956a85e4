"""Reading a task and a participant's data from disk into py_shared's sources (images decoded with Pillow)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from py_shared.data.bundle import labelled_images
from py_shared.data.examples import DataError
from py_shared.data.sources import CsvSource, DataSource, ImageSource, TextSource
from py_shared.task import ImageData, TaskDefinition, TextData, task_from_json

ROOT = Path(__file__).resolve().parent.parent
GPT2_FILES = ROOT / "www" / "vendor" / "gpt2-tokenizer"
DEFINITIONS = ROOT / "tasks" / "definitions"
EXAMPLES = ROOT / "tasks" / "examples"


def read_task(name: str) -> TaskDefinition:
    """A task from a JSON file, or a predefined task by id (typed_json.ValidationError names every bad field)."""
    path = Path(name)
    if not path.exists() and (DEFINITIONS / f"{name}.json").exists():
        path = DEFINITIONS / f"{name}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in DEFINITIONS.glob("*.json")))
        raise DataError(f"{name}: no such task file, nor a predefined task ({known})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    return task_from_json(data)


def decode_image(name: str, data: bytes, spec: ImageData) -> bytes:
    """RGBA bytes of an encoded image resized to the task's size; grey tasks read it as grey (R = G = B)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mode = "L" if spec.channels == 1 else "RGB"
            resized = image.convert(mode).resize((spec.width, spec.height), Image.Resampling.BILINEAR)
            return resized.convert("RGBA").tobytes()
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{name}: cannot be read as an image ({e})") from None


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under a folder, by its path relative to it."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def read_source(task: TaskDefinition, path: Path) -> DataSource:
    """The data at `path` in the form the task's data type needs."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    kind = task.data.kind
    if kind == "image":
        assert isinstance(task.data, ImageData)
        if not path.is_dir() and path.suffix.lower() != ".zip":
            raise DataError(f"{path}: an image task needs a folder or a zip of images")
        files = folder_files(path) if path.is_dir() else {path.name: path.read_bytes()}
        spec = task.data
        return ImageSource([(n, label, decode_image(n, data, spec)) for n, label, data in labelled_images(files)])
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


def example_data(task: TaskDefinition) -> Path:
    """The example data prepared for a predefined task (by make setup)."""
    manifest = EXAMPLES / task.id / "MANIFEST.json"
    if not manifest.exists():
        raise DataError(f"task {task.id} has no example data here: give --data, or run make setup")
    return manifest.parent / json.loads(manifest.read_text())["file"]
