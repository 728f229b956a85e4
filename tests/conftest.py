"""Test-wide settings: tinygrad on the CPU device for CPython tests, browser tests marked by location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before anything imports tinygrad: CPython tests compute on the CPU device (clang), whatever GPUs exist.
os.environ.setdefault("DEV", "CPU")

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    browser_dir = Path(__file__).parent / "browser"
    for item in items:
        if browser_dir in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
