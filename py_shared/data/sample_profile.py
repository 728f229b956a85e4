"""What the task form learns from sample data the creator drops in (read on the device, never uploaded): an image
task's size, channels and labels from a folder or zip of labelled images; a text task's characters from a text.
Each profile is the form's field values it fills in."""

from __future__ import annotations

from collections import Counter

from py_shared.data.bundle import labelled_images
from py_shared.data.examples import DataError
from py_shared.data.image_header import read_header
from py_shared.data.sources import one_text_file
from py_shared.data.tabular import class_order

MAX_ALPHABET = 256  # more distinct characters than this: a char tokenizer is the wrong choice


def image_profile(files: dict[str, bytes]) -> dict[str, str]:
    """Width, height (the most common size), channels (3 if any image is in colour) and labels (sorted) of a
    sample of labelled images; DataError says why the sample cannot serve."""
    images = labelled_images(files)
    headers = [h for _, _, data in images if (h := read_header(data)) is not None]
    if not headers:
        raise DataError("none of these images is a PNG, JPEG, GIF or BMP whose size can be read")
    (width, height), _ = Counter((h.width, h.height) for h in headers).most_common(1)[0]
    labels = sorted({label for _, label, _ in images}, key=class_order)
    channels = 3 if any(h.channels == 3 for h in headers) else 1
    return {"width": str(width), "height": str(height), "channels": str(channels), "labels": ", ".join(labels)}


def text_profile(files: dict[str, bytes]) -> dict[str, str]:
    """The characters of a sample text, for a char tokenizer (in code-point order)."""
    name, text = one_text_file("text", files)
    alphabet = "".join(sorted(set(text)))
    if len(alphabet) < 2:
        raise DataError(f"{name}: a sample text needs at least two distinct characters")
    if len(alphabet) > MAX_ALPHABET:
        raise DataError(f"{name}: {len(alphabet)} distinct characters; choose the gpt2-bpe tokenizer for such text")
    return {"alphabet": alphabet}
