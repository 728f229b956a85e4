"""Federated learning end to end: two headless-Chromium clients (WebGPU) and one CPython client train a
federated MNIST task on non-IID splits through a real server; the federated model beats every client's
local-only model on a common held-out set, and each page shows the round and the participant count."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.support.ui import Select

from harness.chromium import chromium, wait_for_state
from py_cli.federated import create_task
from py_cli.files import example_data, read_source, read_task
from py_cli.split import write_client
from py_shared.data.splits import SplitSpec, hold_out, split_source
from py_shared.models import build_model
from py_shared.safetensors_file import load_safetensors
from py_shared.task import TaskDefinition
from py_shared.training.pipeline import prepare_data
from py_shared.training.trainer import Trainer
from tests.browser.test_local_training import choose, start_training, wait_result
from tests.conftest import ROOT

ROUNDS = 6


def federated_mnist() -> TaskDefinition:
    base = read_task("mnist")
    training = replace(base.training, epochs=ROUNDS, round_duration=1, round_unit="epochs", validation_fraction=0.1)
    return replace(base, id="mnist-together", min_participants=3, training=training)


def open_page(stack: contextlib.ExitStack, url: str, data: Path) -> webdriver.Chrome:
    page = stack.enter_context(chromium())
    page.get(url + "/")
    assert wait_for_state(page, timeout=120) == "ready"
    Select(page.find_element("id", "task-select")).select_by_value("mnist-together")
    choose(page, "data-files", data)
    assert page.find_element("id", "collaborate").is_selected()
    return page


def test_two_browsers_and_a_cpython_client_beat_their_local_models(server_url: str, tmp_path: Path) -> None:
    task = federated_mnist()
    create_task(server_url, task)
    _, subset = hold_out(task, read_source(task, example_data(read_task("mnist"))), 0.4, seed=0)
    train_source, test_source = hold_out(task, subset, 0.25, seed=1)
    parts = split_source(task, train_source, 3, SplitSpec("dirichlet", 0.3), seed=2)
    files = [write_client(task, part, tmp_path, c) for c, part in enumerate(parts)]

    seen_participants: set[str] = set()
    with contextlib.ExitStack() as stack:
        pages = [open_page(stack, server_url, files[c]) for c in range(2)]
        for page in pages:
            start_training(page)
        command = [sys.executable, "-m", "py_cli", "train", "--task", task.id, "--server", server_url]
        cpython = subprocess.Popen([*command, "--data", str(files[2])], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 900
        while any(p.find_element("id", "train-result").get_attribute("data-state") == "running" for p in pages):
            assert time.monotonic() < deadline, "federated training did not finish in time"
            for page in pages:
                seen_participants.add(page.find_element("id", "federation").get_attribute("data-participants") or "")
            time.sleep(0.5)
        for page in pages:
            assert wait_result(page, 10) == "done", page.find_element("id", "train-result").text
            status = page.find_element("id", "federation")
            assert status.get_attribute("data-round") == str(ROUNDS)
            assert f"Round {ROUNDS}" in status.text and "participant" in status.text
        out, _ = cpython.communicate(timeout=300)
    assert cpython.returncode == 0 and f"epochs={ROUNDS}" in out, out
    assert "3" in seen_participants  # the pages showed all three participants at some point

    with urllib.request.urlopen(f"{server_url}/api/tasks/mnist-together/model", timeout=30) as response:
        assert response.headers["x-pydisco-round"] == str(ROUNDS)
        global_model = response.read()
    alone = replace(task, scheme="local")
    test = prepare_data(replace(alone, training=replace(alone.training, validation_fraction=0.0)), test_source)
    federated = build_model(alone)
    load_safetensors(federated, global_model)
    scorer = Trainer(alone, federated, test.train)
    federated_accuracy = scorer.evaluate(test.train)[1]
    for c, part in enumerate(parts):
        data = prepare_data(alone, part)
        local = Trainer(alone, build_model(alone), data.train, data.validation)
        asyncio.run(local.fit())
        local_accuracy = local.evaluate(test.train)[1]
        print(
            f"client {c}: {data.train.count} examples, local {local_accuracy:.3f}, federated {federated_accuracy:.3f}"
        )
        assert federated_accuracy > local_accuracy, (
            f"client {c}: local {local_accuracy:.3f} >= {federated_accuracy:.3f}"
        )
