"""Setup: pinned downloads are verified, the runtime is patched for offline use, reruns change nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from provision import browser_wheel, bytecode
from provision.artefacts import PYSCRIPT, SEGNO, TINYGRAD, UPLOT, Artefact
from provision.download import DownloadError, fetch, sha256_of
from tests.conftest import ROOT

CACHE = ROOT / ".cache" / "downloads"


def test_browser_wheel_is_reproducible_and_holds_only_browser_code(tmp_path: Path) -> None:
    first = browser_wheel.build(ROOT, tmp_path / "a", "9.9.9")
    second = browser_wheel.build(ROOT, tmp_path / "b", "9.9.9")
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert {n.split("/")[0] for n in names} == {"py_shared", "py_browser", "pydisco-9.9.9.dist-info"}
    assert "py_browser/webgpu/device.py" in names


def test_browser_wheel_installs_with_pip(tmp_path: Path) -> None:
    wheel = browser_wheel.build(ROOT, tmp_path / "dist", "9.9.9")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
    )
    result = subprocess.run(
        [sys.executable, "-c", "import py_shared; print(py_shared.__file__, py_shared.__version__)"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(target) in result.stdout


def _runtime() -> dict[str, Any]:
    return dict(json.loads((ROOT / "www" / "dist" / "runtime.json").read_text()))


def _shipped() -> dict[str, Path]:
    return {Path(w).name: ROOT / w.lstrip("/") for w in _runtime()["wheels"]}


def _members(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_shipped_wheels_are_the_pinned_ones_plus_pyodide_bytecode() -> None:
    shipped = _shipped()
    for artefact in (TINYGRAD, SEGNO):
        pinned = ROOT / "www" / "vendor" / "wheels" / artefact.filename
        assert sha256_of(pinned) == artefact.sha256
        original, ours = _members(pinned), _members(shipped[artefact.filename])
        assert all(ours[name] == data for name, data in original.items() if not name.endswith("/RECORD"))
        added = set(ours) - set(original)
        assert added and all("/__pycache__/" in n and n.endswith(".cpython-314.pyc") for n in added)
        record = next(data for name, data in ours.items() if name.endswith(".dist-info/RECORD")).decode()
        assert all(f"\n{name},sha256=" in record for name in added)
        for name in added:  # PEP 552 flags 0b01: checked by hash, which Pyodide skips (unchecked), not by mtime
            assert ours[name][4:8] == b"\x01\x00\x00\x00", name
    tinygrad = _members(shipped[TINYGRAD.filename])
    for module in ("tensor", "renderer/wgsl", "engine/jit", "nn/optim", "codegen/__init__"):
        folder, _, stem = f"tinygrad/{module}".rpartition("/")
        assert f"{folder}/__pycache__/{stem}.cpython-314.pyc" in tinygrad


def test_our_wheel_ships_bytecode_for_every_module() -> None:
    ours = _members(next(p for n, p in _shipped().items() if n.startswith("pydisco-")))
    sources = [n for n in ours if n.endswith(".py")]
    assert "py_browser/app.py" in sources
    for source in sources:
        folder, _, name = source.rpartition("/")
        assert f"{folder}/__pycache__/{name[:-3]}.cpython-314.pyc" in ours, source


def test_bytecode_is_not_compiled_again_for_the_same_wheels(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = _shipped()
    pinned = [ROOT / "www" / "vendor" / "wheels" / a.filename for a in (TINYGRAD, SEGNO)]
    ours = ROOT / "www" / "dist" / next(n for n in shipped if n.startswith("pydisco-"))
    pyodide = ROOT / _runtime()["pyodide"].lstrip("/")
    before = {name: path.read_bytes() for name, path in shipped.items()}
    monkeypatch.setenv("PATH", "")  # no node: compiling again would fail
    out = bytecode.compile_wheels(pinned, ours, pyodide.parent, ROOT / "www" / "dist" / "compiled")
    assert {p.name: p.read_bytes() for p in out} == before


def test_a_wrong_hash_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    wrong = Artefact("pypi", TINYGRAD.spec, TINYGRAD.filename, "0" * 64, python_version="3.14")
    with pytest.raises(DownloadError, match="does not match the pinned"):
        fetch(wrong, tmp_path)
    assert not (tmp_path / TINYGRAD.filename).exists()


def test_a_verified_cached_file_is_not_downloaded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copyfile(CACHE / PYSCRIPT.filename, tmp_path / PYSCRIPT.filename)
    monkeypatch.setenv("PATH", "")  # no npm: any download attempt would fail
    assert fetch(PYSCRIPT, tmp_path) == tmp_path / PYSCRIPT.filename


def test_a_corrupt_cached_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / PYSCRIPT.filename).write_bytes(b"truncated")
    got = fetch(PYSCRIPT, tmp_path)
    assert hashlib.sha256(got.read_bytes()).hexdigest() == PYSCRIPT.sha256


def test_second_setup_run_downloads_nothing() -> None:
    for step in ("provision", "tasks.prepare"):  # what make setup runs
        result = subprocess.run([sys.executable, "-m", step], cwd=ROOT, capture_output=True, text=True, check=True)
        assert "downloading" not in result.stdout, step


def test_the_chart_library_is_vendored_where_the_page_looks_for_it() -> None:
    folder = ROOT / _runtime()["uplot"].lstrip("/")
    assert (folder / "uPlot.iife.min.js").stat().st_size > 10_000 and (folder / "uPlot.min.css").exists()
    assert (folder / ".provisioned").read_text() == UPLOT.sha256
