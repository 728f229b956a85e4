"""Reading the user's files in the worker: text, bytes, and images decoded by the browser (canvas), turned into
py_shared's data sources. The File objects live on the page; only their contents cross into the worker."""

from __future__ import annotations

from typing import Any

import js
from pyodide.ffi import to_js

from py_shared.data.examples import DataError
from py_shared.data.images import LABELS_FILE, parse_labels_csv
from py_shared.task import ImageData, TaskDefinition, TextData
from py_shared.training.pipeline import CsvSource, DataSource, ImageSource, TextSource

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")


async def file_bytes(file: Any) -> bytes:
    """The whole contents of a File."""
    return bytes((await file.arrayBuffer()).to_bytes())


async def file_text(file: Any) -> str:
    """A File's contents as UTF-8 text (a clear error when it is not text)."""
    try:
        return (await file_bytes(file)).decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{file.name}: not a UTF-8 text file") from None


async def decode_image(name: str, data: bytes, spec: ImageData) -> bytes:
    """RGBA bytes of an encoded image resized to the task's size; grey tasks draw it through a grayscale filter."""
    try:
        bitmap = await js.createImageBitmap(js.Blob.new([to_js(data)]))
    except Exception:
        raise DataError(f"{name}: cannot be read as an image") from None
    canvas = js.OffscreenCanvas.new(spec.width, spec.height)
    context = canvas.getContext("2d")
    if spec.channels == 1:
        context.filter = "grayscale(1)"
    context.drawImage(bitmap, 0, 0, spec.width, spec.height)
    bitmap.close()
    return bytes(context.getImageData(0, 0, spec.width, spec.height).data.to_bytes())


def _list(files: Any) -> list[Any]:
    return [files.item(i) for i in range(files.length)]


async def read_source(task: TaskDefinition, files: Any, progress: Any = None) -> DataSource:
    """The selected files (a FileList) as the source the task's data type needs."""
    chosen = _list(files)
    if not chosen:
        raise DataError("choose your data files first")
    if isinstance(task.data, ImageData):
        return await _images(task.data, chosen, progress)
    if len(chosen) != 1:
        raise DataError(f"a {task.data.kind} task takes one file, {len(chosen)} were chosen")
    file = chosen[0]
    text = await file_text(file)
    if task.data.kind == "tabular":
        return CsvSource(file.name, text)
    assert isinstance(task.data, TextData)
    bpe = None
    if task.data.tokenizer == "gpt2-bpe":
        base = js.location.origin + "/www/vendor/gpt2-tokenizer/"
        bpe = (await (await js.fetch(base + "encoder.json")).text(), await (await js.fetch(base + "vocab.bpe")).text())
    return TextSource(file.name, text, bpe)


async def _images(spec: ImageData, chosen: list[Any], progress: Any) -> ImageSource:
    by_name = {f.name: f for f in chosen}
    if LABELS_FILE not in by_name:
        raise DataError(f"choose the images together with their {LABELS_FILE} (filename,label)")
    labels = parse_labels_csv(await file_text(by_name.pop(LABELS_FILE)))
    images = {n: f for n, f in by_name.items() if n.lower().endswith(IMAGE_SUFFIXES)}
    missing = [n for n in labels if n not in images]
    if missing:
        raise DataError(f"{LABELS_FILE} names {len(missing)} image(s) that were not chosen, e.g. {missing[0]}")
    items = []
    for k, (name, label) in enumerate(labels.items(), start=1):
        items.append((name, label, await decode_image(name, await file_bytes(images[name]), spec)))
        if progress is not None and (k % 50 == 0 or k == len(labels)):
            progress(f"Decoding images… {k}/{len(labels)}")
    return ImageSource(items)
