"""Build the wheel the browser installs: py_shared + py_browser, byte-for-byte reproducible."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

NAME = "pydisco"
PACKAGES = ("py_shared", "py_browser")
EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same wheel


def _sources(root: Path) -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build(root: Path, dist: Path, version: str) -> Path:
    """Write dist/pydisco-VERSION-py3-none-any.whl from the sources; rewrite it only when they changed."""
    info = f"{NAME}-{version}.dist-info"
    files: dict[str, bytes] = {str(p.relative_to(root)): p.read_bytes() for p in _sources(root)}
    # No Requires-Dist: micropip would look dependencies up on PyPI, which the browser must never reach.
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: pydisco-provision\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = "".join(f"{name},{record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()

    dist.mkdir(parents=True, exist_ok=True)
    target = dist / f"{NAME}-{version}-py3-none-any.whl"
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, EPOCH), data, zipfile.ZIP_DEFLATED)
    if target.exists() and target.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        tmp.replace(target)
    return target
