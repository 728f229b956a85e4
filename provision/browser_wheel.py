"""Build the wheel the browser installs: py_shared + py_browser, byte-for-byte reproducible."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Mapping
from pathlib import Path

NAME = "pydisco"
PACKAGES = ("py_shared", "py_browser")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same wheel


def _sources(root: Path) -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def record_lines(files: Mapping[str, bytes]) -> str:
    """A wheel's RECORD lines for `files`: path, sha256, size."""
    return "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())


def write_zip(path: Path, files: Mapping[str, bytes]) -> None:
    """A zip of `files` with fixed timestamps: the same files give the same bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, _EPOCH), data, zipfile.ZIP_DEFLATED)


def build(root: Path, dist: Path, version: str) -> Path:
    """Write dist/pydisco-VERSION-py3-none-any.whl from the sources; rewrite it only when they changed."""
    info = f"{NAME}-{version}.dist-info"
    files: dict[str, bytes] = {str(p.relative_to(root)): p.read_bytes() for p in _sources(root)}
    # No Requires-Dist: the page names every wheel it loads, and must never look one up on PyPI.
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: pydisco-provision\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/RECORD"] = (record_lines(files) + f"{info}/RECORD,,\n").encode()

    dist.mkdir(parents=True, exist_ok=True)
    target = dist / f"{NAME}-{version}-py3-none-any.whl"
    tmp = target.with_suffix(".tmp")
    write_zip(tmp, files)
    if target.exists() and target.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        tmp.replace(target)
    return target
