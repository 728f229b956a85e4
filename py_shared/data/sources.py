"""A participant's data as the platform hands it over: file contents, and images already decoded.

The platform reads files and decodes images (the browser with `js` and canvas, the CLI from disk with Pillow);
everything after these classes is shared.
"""

from __future__ import annotations

from dataclasses import dataclass


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
