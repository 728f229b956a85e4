"""tinygrad on the browser's WebGPU computes the same training steps as tinygrad's CPU device on CPython."""

from __future__ import annotations

from selenium import webdriver

from harness.pyworker import call_in_worker
from tests.browser.conftest import worker_file
from tests.browser.parity_steps import SHAPES, run_steps

STEPS = 3  # run, capture, replay: the replay goes through WebGpuGraph's single submit


def test_mlp_and_cnn_steps_match_cpu(ready_page: webdriver.Chrome) -> None:
    browser = call_in_worker(ready_page, worker_file("parity_steps.py"), "run_in_browser", steps=STEPS)
    assert browser["adapter"]
    for model in SHAPES:
        cpu = run_steps(model, STEPS)
        assert len(browser[model]["params"]) == len(cpu["params"])
        worst = max(
            abs(a - b)
            for web, ref in zip(browser[model]["params"], cpu["params"], strict=True)
            for a, b in zip(web, ref, strict=True)
        )
        assert worst < 1e-4, f"{model}: parameters differ by up to {worst:.2e}"
        assert max(abs(a - b) for a, b in zip(browser[model]["loss"], cpu["loss"], strict=True)) < 1e-4
        # the steps did train: parameters moved away from their initial values
        assert run_steps(model, 0)["params"] != cpu["params"]
