"""Setup: pinned downloads are verified, the runtime is patched for offline use, reruns change nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from provision import browser_wheel
from provision.artefacts import MICROPIP, PACKAGING, PYSCRIPT, SEGNO, TINYGRAD, UPLOT, Artefact
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


def test_pyodide_lock_names_the_wheels_we_ship() -> None:
    runtime = json.loads((ROOT / "www" / "dist" / "runtime.json").read_text())
    pyodide_dir = ROOT / runtime["pyodide"].lstrip("/").rsplit("/", 1)[0]
    lock = json.loads((pyodide_dir / "pyodide-lock.json").read_text())
    for artefact in [MICROPIP, PACKAGING]:
        entry = lock["packages"][artefact.spec.split("==")[0]]
        assert entry["sha256"] == artefact.sha256 == sha256_of(pyodide_dir / entry["file_name"])


def test_every_vendored_wheel_matches_its_pin() -> None:
    runtime = json.loads((ROOT / "www" / "dist" / "runtime.json").read_text())
    shipped = {Path(w).name: ROOT / w.lstrip("/") for w in runtime["wheels"]}
    for artefact in (TINYGRAD, SEGNO):
        assert sha256_of(shipped[artefact.filename]) == artefact.sha256


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
    runtime = json.loads((ROOT / "www" / "dist" / "runtime.json").read_text())
    folder = ROOT / runtime["uplot"].lstrip("/")
    assert (folder / "uPlot.iife.min.js").stat().st_size > 10_000 and (folder / "uPlot.min.css").exists()
    assert (folder / ".provisioned").read_text() == UPLOT.sha256
