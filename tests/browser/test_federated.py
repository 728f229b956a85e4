"""Federated learning end to end: two headless-Chromium clients (WebGPU) and one CPython client train a
federated MNIST task on non-IID splits through a real server; the federated model beats every client's
local-only model on a common held-out set, and each page shows the round and the participant count. With
secure aggregation (WebCrypto in the pages, `cryptography` in the CLI) the same split reaches the same accuracy."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.support.ui import Select

from harness.chromium import chromium, wait_for_state
from py_cli.federated import create_task
from py_cli.files import example_data, read_source, read_task
from py_cli.split import write_client
from py_shared.data.sources import DataSource
from py_shared.data.splits import SplitSpec, hold_out, split_source
from py_shared.models import build_model
from py_shared.models.base import Model
from py_shared.safetensors_file import load_safetensors
from py_shared.task import TaskDefinition
from py_shared.training.pipeline import prepare_data
from py_shared.training.trainer import Trainer
from tests.browser.conftest import screenshots
from tests.browser.test_local_training import choose, start_training, wait_result
from tests.conftest import ROOT

ROUNDS = 6


@dataclass(frozen=True)
class Split:
    """The common data: each client's file and part, and the held-out test set."""

    files: list[Path]
    parts: list[DataSource]
    test: DataSource


def federated_mnist(task_id: str, secure: bool) -> TaskDefinition:
    base = read_task("mnist")
    training = replace(base.training, epochs=ROUNDS, round_duration=1, round_unit="epochs", validation_fraction=0.1)
    return replace(base, id=task_id, min_participants=3, training=training, secure_aggregation=secure)


def make_split(task: TaskDefinition, clients: int, folder: Path) -> Split:
    """A 40 % sample of MNIST's example data: a quarter held out, the rest split Dirichlet(0.3) among `clients`."""
    _, subset = hold_out(task, read_source(task, example_data(read_task("mnist"))), 0.4, seed=0)
    train_source, test_source = hold_out(task, subset, 0.25, seed=1)
    parts = split_source(task, train_source, clients, SplitSpec("dirichlet", 0.3), seed=2)
    return Split([write_client(task, part, folder, c) for c, part in enumerate(parts)], parts, test_source)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    return make_split(federated_mnist("mnist-split", secure=False), 3, tmp_path_factory.mktemp("clients"))


def open_page(stack: contextlib.ExitStack, url: str, task_id: str, data: Path) -> webdriver.Chrome:
    page = stack.enter_context(chromium())
    page.get(url + "/")
    assert wait_for_state(page, timeout=120) == "ready"
    Select(page.find_element("id", "task-select")).select_by_value(task_id)
    choose(page, "data-files", data)
    assert page.find_element("id", "collaborate").is_selected()
    return page


def train_together(server_url: str, task: TaskDefinition, split: Split) -> tuple[float, set[str], set[str]]:
    """Two pages and one CPython client train `task` on the split; returns the global model's test accuracy and
    what the pages showed (participant counts, secure-aggregation lines)."""
    create_task(server_url, task)
    seen_participants: set[str] = set()
    seen_secure: set[str] = set()
    with contextlib.ExitStack() as stack:
        pages = [open_page(stack, server_url, task.id, split.files[c]) for c in range(2)]
        for page in pages:
            start_training(page)
        command = [sys.executable, "-m", "py_cli", "train", "--task", task.id, "--server", server_url]
        cpython = subprocess.Popen(
            [*command, "--data", str(split.files[2])], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 900
        while any(p.find_element("id", "train-result").get_attribute("data-state") == "running" for p in pages):
            assert time.monotonic() < deadline, "federated training did not finish in time"
            for page in pages:
                status = page.find_element("id", "federation")
                seen_participants.add(status.get_attribute("data-participants") or "")
                seen_secure.add(status.get_attribute("data-secure") or "")
            time.sleep(0.5)
        for page in pages:
            assert wait_result(page, 10) == "done", page.find_element("id", "train-result").text
            status = page.find_element("id", "federation")
            assert status.get_attribute("data-round") == str(ROUNDS)
            assert f"Round {ROUNDS}" in status.text and "participant" in status.text
            assert page.find_element("id", "train-charts").get_attribute("data-rounds") == str(ROUNDS)  # per round
            story = page.find_element("id", "event-log").text  # the board's log, in plain words
            assert "Joined the task at round 0" in story and f"Round {ROUNDS - 1} aggregated" in story, story
        screenshots(pages[0], f"together-{task.id}")  # the board after a run with the others
        out, _ = cpython.communicate(timeout=300)
    assert cpython.returncode == 0 and f"epochs={ROUNDS}" in out, out

    with urllib.request.urlopen(f"{server_url}/api/tasks/{task.id}/model", timeout=30) as response:
        assert response.headers["x-pydisco-round"] == str(ROUNDS)
        global_model = response.read()
    return accuracy(task, global_model, split.test), seen_participants, seen_secure


def accuracy(task: TaskDefinition, weights: bytes, test_source: DataSource) -> float:
    model = build_model(task)
    load_safetensors(model, weights)
    return model_accuracy(task, model, test_source)


def model_accuracy(task: TaskDefinition, model: Model, test_source: DataSource) -> float:
    """`model`'s accuracy on the held-out set."""
    alone = replace(task, scheme="local", secure_aggregation=False)
    test = prepare_data(replace(alone, training=replace(alone.training, validation_fraction=0.0)), test_source)
    return Trainer(alone, model, test.train).evaluate(test.train)[1]


@pytest.fixture(scope="module")
def plain_accuracy(server_url: str, split: Split) -> float:
    federated, seen_participants, _ = train_together(server_url, federated_mnist("mnist-together", False), split)
    assert "3" in seen_participants  # the pages showed all three participants at some point
    return federated


def test_two_browsers_and_a_cpython_client_beat_their_local_models(plain_accuracy: float, split: Split) -> None:
    task = replace(federated_mnist("mnist-alone", False), scheme="local")
    test = prepare_data(replace(task, training=replace(task.training, validation_fraction=0.0)), split.test)
    for c, part in enumerate(split.parts):
        data = prepare_data(task, part)
        local = Trainer(task, build_model(task), data.train, data.validation)
        asyncio.run(local.fit())
        local_accuracy = local.evaluate(test.train)[1]
        print(f"client {c}: {data.train.count} examples, local {local_accuracy:.3f}, federated {plain_accuracy:.3f}")
        assert plain_accuracy > local_accuracy, f"client {c}: local {local_accuracy:.3f} >= {plain_accuracy:.3f}"


def test_secure_aggregation_trains_to_the_same_accuracy(server_url: str, split: Split, plain_accuracy: float) -> None:
    secure, _, seen_secure = train_together(server_url, federated_mnist("mnist-secure", True), split)
    print(f"federated accuracy: plain {plain_accuracy:.4f}, secure {secure:.4f}")
    assert abs(secure - plain_accuracy) <= 0.01
    assert "secure aggregation: 3 participants, threshold 2" in seen_secure  # the pages said so
