"""Reading the user's data in the worker: chosen files or a task's example data, images decoded by the browser
(createImageBitmap + canvas), turned into py_shared's data sources. File objects live on the page; only their
contents cross into the worker."""

from __future__ import annotations

from typing import Any

import js
from pyodide.ffi import to_js
from pyscript import document, window

from py_shared.data.bundle import labelled_images
from py_shared.data.examples import DataError
from py_shared.data.sources import CsvSource, DataSource, ImageSource, TextSource, one_text_file
from py_shared.task import ImageData, TaskDefinition, TextData

Progress = Any  # a callable taking one line of text, or None


async def file_bytes(file: Any) -> bytes:
    """The whole contents of a File."""
    return bytes((await file.arrayBuffer()).to_bytes())


async def file_text(file: Any) -> str:
    """A File's contents as UTF-8 text (a clear error when it is not text)."""
    try:
        return (await file_bytes(file)).decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{file.name}: not a UTF-8 text file") from None


async def chosen_files(files: Any) -> dict[str, bytes]:
    """The contents of the files of a FileList, by name."""
    return {(f := files.item(i)).name: await file_bytes(f) for i in range(files.length)}


async def fetch_bytes(url: str) -> bytes:
    """A same-origin URL's body (the server's example data, the tokenizer's files)."""
    response = await js.fetch(js.location.origin + url)
    if not response.ok:
        raise DataError(f"{url}: the server answered {response.status}")
    return bytes((await response.arrayBuffer()).to_bytes())


async def initial_weights(task_id: str, token: str) -> bytes | None:
    """The initial weights the task's creator uploaded to this server, or None when it starts from its seed (or
    is not this server's)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    options = to_js({"headers": headers}, dict_converter=js.Object.fromEntries)
    response = await js.fetch(f"{js.location.origin}/api/tasks/{js.encodeURIComponent(task_id)}/initial-model", options)
    if not response.ok:
        return None
    return bytes((await response.arrayBuffer()).to_bytes())


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


async def to_source(task: TaskDefinition, files: dict[str, bytes], progress: Progress = None) -> DataSource:
    """Files (name -> contents) as the source the task's data type needs."""
    if not files:
        raise DataError("choose your data files first")
    if isinstance(task.data, ImageData):
        return await _images(task.data, files, progress)
    name, text = one_text_file(task.data.kind, files)
    if task.data.kind == "tabular":
        return CsvSource(name, text)
    assert isinstance(task.data, TextData)
    return TextSource(name, text, await bpe_files() if task.data.tokenizer == "gpt2-bpe" else None)


async def bpe_files() -> tuple[str, str]:
    """The GPT-2 tokenizer's encoder.json and vocab.bpe, served by this server."""
    base = "/www/vendor/gpt2-tokenizer/"
    return (await fetch_bytes(base + "encoder.json")).decode(), (await fetch_bytes(base + "vocab.bpe")).decode()


async def _images(spec: ImageData, files: dict[str, bytes], progress: Progress) -> ImageSource:
    labelled = labelled_images(files)
    items = []
    for k, (name, label, data) in enumerate(labelled, start=1):
        items.append((name, label, await decode_image(name, data, spec)))
        if progress is not None and (k % 100 == 0 or k == len(labelled)):
            progress(f"Decoding images… {k}/{len(labelled)}")
    return ImageSource(items)


def save_as(name: str, data: bytes | str, media_type: str = "application/octet-stream") -> None:
    """Hand `data` to the browser as a download called `name` (it never leaves the device). The blob and its
    link are the page's: the worker's own blob URLs are not the window's to open."""
    options = to_js({"type": media_type}, dict_converter=js.Object.fromEntries)
    blob = window.Blob.new([data if isinstance(data, str) else to_js(data)], options)
    link = document.createElement("a")
    link.href, link.download = window.URL.createObjectURL(blob), name
    link.click()
