"""tinygrad on the browser's WebGPU computes the same training steps as tinygrad's CPU device on CPython."""

from __future__ import annotations

import base64

import numpy as np
from selenium import webdriver

from harness.pyworker import call_in_worker
from tests.browser import zoo_steps
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


def test_zoo_models_train_identically_through_the_trainer(ready_page: webdriver.Chrome) -> None:
    """Seeded initialisation, the Trainer's JIT steps and the weights codec agree between WebGPU and CPU."""
    browser = call_in_worker(ready_page, worker_file("zoo_steps.py"), "run_in_browser")
    cpu = zoo_steps.run_on_cpu()
    for kind in zoo_steps.KINDS:
        web, ref = browser[kind], cpu[kind]
        (web_initial, web_final), (ref_initial, ref_final) = (
            [np.frombuffer(base64.b64decode(r[k]), dtype="<f4") for k in ("initial", "final")] for r in (web, ref)
        )
        # the same random bits, turned into floats by arithmetic (log and cos for a normal draw) that the GPU
        # rounds a little differently: close, not bit-identical
        np.testing.assert_allclose(web_initial, ref_initial, rtol=1e-3, atol=1e-6, err_msg=f"{kind}: initial weights")
        np.testing.assert_allclose(web_final, ref_final, rtol=1e-3, atol=1e-4, err_msg=f"{kind}: trained weights")
        assert np.allclose(web["loss"], ref["loss"], atol=1e-4), kind
        assert web["final"] != web["initial"]  # it trained
