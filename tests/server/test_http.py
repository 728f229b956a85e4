"""The real server process: static files with the right types and headers, health, logging, clear failures."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.server_process import ROOT, free_port
from tests.server.conftest import fetch


def runtime() -> dict[str, object]:
    return dict(json.loads((ROOT / "www" / "dist" / "runtime.json").read_text()))


def test_health_reports_version_and_uptime(server: tuple[str, Path]) -> None:
    status, headers, body = fetch(server[0] + "/api/health")
    health = json.loads(body)
    assert status == 200 and headers["content-type"] == "application/json"
    assert health["status"] == "ok"
    assert health["version"] == runtime()["version"]
    assert isinstance(health["uptime_s"], float) and health["uptime_s"] >= 0


@pytest.mark.parametrize(
    ("path", "mime"),
    [
        ("/", "text/html"),
        ("/www/app.js", "text/javascript"),
        ("/www/webgpu.js", "text/javascript"),
        ("/www/worker.py", "text/x-python"),
        ("/www/app.css", "text/css"),
        ("/www/dist/runtime.json", "application/json"),
    ],
)
def test_app_files_have_their_types_and_isolation_headers(server: tuple[str, Path], path: str, mime: str) -> None:
    status, headers, _ = fetch(server[0] + path)
    assert status == 200
    assert headers["content-type"].split(";")[0] == mime
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"
    assert headers["cache-control"] == "no-cache"  # our own files: revalidated, so updates show at once


def test_vendored_runtime_is_served_with_types_and_long_cache(server: tuple[str, Path]) -> None:
    rt = runtime()
    pyodide_dir = str(rt["pyodide"]).rsplit("/", 1)[0]
    wheels = [str(w) for w in rt["wheels"]]  # type: ignore[attr-defined]
    for path, mime in [
        (str(rt["pyodide"]), "text/javascript"),
        (pyodide_dir + "/pyodide.asm.wasm", "application/wasm"),
        (pyodide_dir + "/pyodide-lock.json", "application/json"),
        (f"{rt['pyscript']}/core.js", "text/javascript"),
        ("/www/vendor/wheels/tinygrad-0.14.0-py3-none-any.whl", "application/zip"),
    ]:
        status, headers, _ = fetch(server[0] + path)
        assert status == 200, path
        assert headers["content-type"].split(";")[0] == mime, path
        assert "immutable" in headers["cache-control"] and "max-age=31536000" in headers["cache-control"]
        assert headers["cross-origin-embedder-policy"] == "require-corp"
    for wheel in wheels:  # the page's wheels get their bytecode at setup, in place: revalidated
        status, headers, _ = fetch(server[0] + wheel)
        assert status == 200 and headers["content-type"] == "application/zip", wheel
        assert headers["cache-control"] == "no-cache", wheel
    assert {w.rsplit("/", 1)[1].split("-")[0] for w in wheels} == {"tinygrad", "segno", "pydisco"}


def test_errors_carry_isolation_headers_and_stay_inside_www(server: tuple[str, Path]) -> None:
    status, headers, _ = fetch(server[0] + "/www/no-such-file.js")
    assert status == 404
    assert headers["cross-origin-opener-policy"] == "same-origin"
    for sneaky in ["/www/../server/app.py", "/www/%2e%2e/server/app.py", "/server/app.py", "/pyproject.toml"]:
        assert fetch(server[0] + sneaky)[0] == 404, sneaky


def test_one_log_line_per_request(server: tuple[str, Path]) -> None:
    url, log = server
    marker = f"/www/log-marker-{time.time_ns()}"
    fetch(url + marker)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [line for line in log.read_text().splitlines() if marker in line]
        if lines:
            break
        time.sleep(0.05)
    assert len(lines) == 1
    assert " INFO " in lines[0] and "GET" in lines[0] and " 404 " in lines[0]
    _, _, body = fetch(url + "/www/app.css")
    deadline = time.monotonic() + 5
    while not (served := [line for line in log.read_text().splitlines() if "GET /www/app.css 200" in line]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert served[-1].endswith(f" {len(body)}B")  # the body's bytes, for what a visit costs


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "server", "--port", str(port), "--data-dir", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode != 0
    assert f"port {port}" in proc.stderr and "already in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_runtime_says_run_make_setup(tmp_path: Path) -> None:
    # a copy of the server without www/dist or www/vendor, as on a clone where `make setup` never ran
    for package in ["server", "py_shared", "py_cpython"]:
        subprocess.run(["cp", "-r", str(ROOT / package), str(tmp_path)], check=True)
    (tmp_path / "www").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "server", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "make setup" in proc.stderr
    assert "Traceback" not in proc.stderr
