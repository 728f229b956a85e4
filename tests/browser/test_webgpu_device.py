"""py_browser's tinygrad WEBGPU device in Chromium: errors surface, memory is freed, batching holds."""

from __future__ import annotations

from typing import Any

import pytest
from selenium import webdriver

from harness.pyworker import call_in_worker
from tests.browser.conftest import worker_file


@pytest.fixture
def checks(ready_page: webdriver.Chrome) -> dict[str, Any]:
    result: dict[str, Any] = call_in_worker(ready_page, worker_file("device_checks.py"), "run_checks")
    return result


def test_device_behaviour(checks: dict[str, Any]) -> None:
    assert "E_broken_kernel_42" in checks["compile_error"]
    assert "WGSL compilation" in checks["compile_error"]

    dispatch = checks["dispatch"]
    assert dispatch["filled"] == [0.5, 1.5, 2.5, 3.5]
    assert "WebGPU error" in dispatch["error"]
    assert dispatch["after_error"] == [2.0, 3.0]

    freed = checks["freed"]
    assert freed["during"] == freed["before"] + 5
    assert freed["after"] == freed["before"]

    submits = checks["submits"]
    assert submits["batched"] == 1
    assert submits["per_kernel"] > 1
    # ones(8, 64) @ ones(64, 64): each row sums 64 * 64, doubled, plus one
    assert submits["batched_value"] == submits["per_kernel_value"] == 64 * 64 * 2 + 1
