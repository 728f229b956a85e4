"""Run `python -m server` as a child process on a free port: what `simulate` starts when no --server is given
(the test harness and the benchmarks start theirs with it too)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(
    data_dir: Path, port: int = 0, log_path: Path | None = None, extra_args: tuple[str, ...] = ()
) -> Iterator[str]:
    """Start the real server (uvicorn) and yield its base URL once /api/health answers."""
    port = port or free_port()
    log = open(log_path, "a") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *extra_args,
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with code {proc.returncode} before answering")
            try:
                with urllib.request.urlopen(url + "/api/health", timeout=1) as r:
                    if json.load(r)["status"] == "ok":
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not answer /api/health within 30 s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()  # type: ignore[union-attr]
