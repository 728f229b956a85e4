"""The real server as a child process on a free port, for tests and benchmarks: py_cli.local_server's, since
`py_cli simulate` starts one too and product code must not import the harness."""

from __future__ import annotations

from py_cli.local_server import ROOT, free_port, running_server

__all__ = ["ROOT", "free_port", "running_server"]
