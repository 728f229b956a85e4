"""A participant's data as the platform hands it over: file contents, and images already decoded.

The platform reads files and decodes images (the browser with `js` and canvas, the CLI from disk with Pillow);
everything after these classes is shared.
"""

from __future__ import annotations

from dataclasses import dataclass

from py_shared.data.examples import DataError


@dataclass(frozen=True)
class CsvSource:
    """A CSV file's name and text."""

    name: str
    text: str


@dataclass(frozen=True)
class ImageSource:
    """Decoded images: (file name, label, RGBA bytes at the task's width x height) each."""

    items: list[tuple[str, str, bytes]]


@dataclass(frozen=True)
class TextSource:
    """A text file's name and contents; GPT-2 BPE also needs (encoder.json, vocab.bpe) contents."""

    name: str
    text: str
    bpe_files: tuple[str, str] | None = None


DataSource = CsvSource | ImageSource | TextSource


def one_text_file(kind: str, files: dict[str, bytes]) -> tuple[str, str]:
    """The name and text of the one UTF-8 file a `kind` (tabular or text) task takes; DataError says otherwise."""
    if len(files) != 1:
        raise DataError(f"a {kind} task takes one file, {len(files)} were given")
    ((name, data),) = files.items()
    try:
        return name, data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{name}: not a UTF-8 text file") from None
