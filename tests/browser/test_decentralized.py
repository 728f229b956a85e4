"""Decentralized learning end to end: three headless-Chromium pages (WebRTC from the page's main thread, training
on WebGPU in its worker) and one CPython peer on aiortc train a decentralized MNIST task on non-IID splits through
a real signaling server with secure aggregation (each peer's change leaves it only masked; the peers unmask only
the sum), over a full mesh and then over a ring. After every round every peer holds the same model
(its fingerprint, a digest of the model's bytes, is the same on every peer), and that model beats every peer's
local-only model on a common held-out set. The same pages then see one of them closed in the middle of training:
the others are left to finish without it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.support.ui import Select

from harness.chromium import chromium, wait_for_state
from harness.pyworker import call_in_worker
from py_cli.federated import create_task
from py_cli.files import read_task
from py_shared.decentralized.peer import fingerprint
from py_shared.models import build_model
from py_shared.safetensors_file import load_safetensors
from py_shared.task import Decentralized, TaskDefinition, Topology
from py_shared.training.pipeline import prepare_data
from py_shared.training.trainer import Trainer
from py_shared.weights import get_vector, vector_to_bytes
from tests.browser.conftest import worker_file
from tests.browser.test_federated import Split, make_split, model_accuracy
from tests.browser.test_local_training import choose, start_training, wait_result
from tests.conftest import ROOT

ROUNDS = 6
PAGES = 3


def decentralized_mnist(
    task_id: str,
    topology: Topology,
    rounds: int = ROUNDS,
    peers: int = PAGES + 1,
    timeout_s: float = 60,
    secure: bool = False,
) -> TaskDefinition:
    base = read_task("mnist")
    training = replace(base.training, epochs=rounds, round_duration=1, round_unit="epochs", validation_fraction=0.1)
    return replace(base, id=task_id, title=f"MNIST {task_id}", scheme="decentralized", min_participants=peers,
                   training=training, secure_aggregation=secure,
                   decentralized=Decentralized(topology=topology, exchange_timeout_s=timeout_s))  # fmt: skip


# a page closes while the others train: the three left go on without it, waiting no longer than the timeout
DROP_TASK = decentralized_mnist("mnist-drop", "mesh", rounds=3, peers=PAGES, timeout_s=20)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    return make_split(decentralized_mnist("mnist-split", "mesh"), PAGES + 1, tmp_path_factory.mktemp("peers"))


TOPOLOGIES: tuple[Topology, ...] = ("mesh", "ring")


@pytest.fixture(scope="module")
def pages(server_url: str, split: Split) -> Iterator[list[webdriver.Chrome]]:
    """The pages, loaded once the tasks exist (a page lists the server's tasks when it starts)."""
    for topology in TOPOLOGIES:
        create_task(server_url, decentralized_mnist(f"mnist-{topology}", topology, secure=True))
    create_task(server_url, DROP_TASK)
    with contextlib.ExitStack() as stack:
        opened = []
        for c in range(PAGES):
            page = stack.enter_context(chromium())
            page.get(server_url + "/")
            assert wait_for_state(page, timeout=180) == "ready"
            choose(page, "data-files", split.files[c])
            opened.append(page)
        yield opened


def test_page_links_carry_frames_whole_and_release_their_connections(pages: list[webdriver.Chrome]) -> None:
    result = call_in_worker(pages[0], worker_file("rtc_checks.py"), "run_rtc_checks", size=5_000_000, timeout=180)
    print(f"page to page, 5 MB: opened in {result['opened_s']:.2f} s, sent in {result['transfer_s']:.2f} s")
    assert result["whole"] and result["open_links"] == 2
    assert "malformed chunk" in result["refused"], result
    assert result["left_open"] == 0


class CliPeer:
    """The CPython peer (`python -m py_cli train`), its progress lines in a file, its final model saved."""

    def __init__(self, server_url: str, task: TaskDefinition, split: Split, folder: Path) -> None:
        self.log, self.model = folder / f"{task.id}-cli.log", folder / f"{task.id}-cli.safetensors"
        command = [sys.executable, "-m", "py_cli", "train", "--task", task.id, "--server", server_url,
                   "--data", str(split.files[PAGES]), "--name", "cli", "--save", str(self.model)]  # fmt: skip
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)

    def fingerprints(self) -> dict[int, str]:
        """The model's fingerprint after each round, from the progress lines."""
        found = re.findall(r"\] round (\d+), .*?model ([0-9a-f]{16})", self.log.read_text())
        return {int(r): f for r, f in found}

    def status(self) -> str:
        lines = self.log.read_text().strip().splitlines()
        return lines[-1] if lines else "(nothing yet)"


def where(pages: list[webdriver.Chrome], cli: CliPeer) -> str:
    """What each peer shows, for a failure's message."""
    shown = [
        f"page {i}: {p.find_element('id', 'federation').text!r} / {p.find_element('id', 'train-message').text!r}"
        for i, p in enumerate(pages)
    ]
    return "; ".join([*shown, f"cli: {cli.status()}"])


def train_together(
    server_url: str, pages: list[webdriver.Chrome], task: TaskDefinition, split: Split, folder: Path,
    close_in_exchange: webdriver.Chrome | None = None,
) -> float:  # fmt: skip
    """The pages and the CPython peer train `task` (`close_in_exchange` leaves once it is in an exchange); asserts
    every round ended with one model on every peer left, and returns that model's accuracy on the held-out set."""
    for c, page in enumerate(pages):
        if not page.find_element("id", "task-select").is_enabled():  # a failed test left it training: start afresh
            page.refresh()
            assert wait_for_state(page, timeout=180) == "ready"
            choose(page, "data-files", split.files[c])
        Select(page.find_element("id", "task-select")).select_by_value(task.id)
        deadline = time.monotonic() + 30  # the page reads the task from the server before it is chosen
        while not page.find_element("id", "task-summary").text.startswith(task.title):
            assert time.monotonic() < deadline, f"the page did not take task {task.id}"
            time.sleep(0.2)
        assert page.find_element("id", "collaborate").is_selected()
        start_training(page)
    cli = CliPeer(server_url, task, split, folder)
    rounds = task.training.epochs
    seen: list[dict[int, str]] = [{} for _ in pages]
    words: set[str] = set()
    deadline = time.monotonic() + 900
    while close_in_exchange is not None:
        assert time.monotonic() < deadline, f"the page never reached an exchange: {where(pages, cli)}"
        if close_in_exchange.find_element("id", "federation").get_attribute("data-state") == "aggregating":
            close_in_exchange.get("about:blank")  # the page is gone: its worker, connections and socket with it
            gone = pages.index(close_in_exchange)
            pages, close_in_exchange = pages[:gone] + pages[gone + 1 :], None
            del seen[gone]
        time.sleep(0.1)
    while any(p.find_element("id", "train-result").get_attribute("data-state") == "running" for p in pages):
        assert time.monotonic() < deadline, f"decentralized training did not finish in time: {where(pages, cli)}"
        for page, fingerprints in zip(pages, seen, strict=True):
            status = page.find_element("id", "federation")
            if status.get_attribute("data-fingerprint"):
                fingerprints[int(status.get_attribute("data-round") or 0)] = (
                    status.get_attribute("data-fingerprint") or ""
                )
            words.add(status.text)
        time.sleep(0.3)
    for page in pages:
        assert wait_result(page, 10) == "done", page.find_element("id", "train-result").text
        status = page.find_element("id", "federation")
        assert status.get_attribute("data-round") == str(rounds), status.text
        seen[pages.index(page)][rounds] = status.get_attribute("data-fingerprint") or ""
    assert cli.process.wait(timeout=300) == 0, cli.log.read_text()[-3000:]
    at_cli = cli.fingerprints()
    for r in range(1, rounds + 1):
        held = {at_cli.get(r)} | {page_seen[r] for page_seen in seen if r in page_seen}
        assert len(held) == 1 and None not in held, f"round {r}: the peers' models differ: {held}"
    assert all(len(page_seen) >= 2 for page_seen in seen)  # the pages were seen after several rounds
    model = build_model(task)
    load_safetensors(model, cli.model.read_bytes())
    assert fingerprint(vector_to_bytes(get_vector(model))) == at_cli[rounds]
    mesh = task.decentralized.topology == "mesh"
    link_words = "model exchanged" if mesh else "average"
    if task.secure_aggregation:
        link_words = "masked input exchanged" if mesh else "masked sum"
        assert any("secure aggregation: the sum of 4 of 4 peers' models" in w for w in words), words
    assert any(link_words in w for w in words), words  # each connection's state, in words, on the pages
    return model_accuracy(task, model, split.test)


def local_accuracies(split: Split) -> list[float]:
    task = replace(decentralized_mnist("mnist-alone", "mesh"), scheme="local")
    test = prepare_data(replace(task, training=replace(task.training, validation_fraction=0.0)), split.test)
    out = []
    for part in split.parts:
        data = prepare_data(task, part)
        local = Trainer(task, build_model(task), data.train, data.validation)
        asyncio.run(local.fit())
        out.append(local.evaluate(test.train)[1])
    return out


@pytest.fixture(scope="module")
def local_only(split: Split) -> list[float]:
    return local_accuracies(split)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_three_pages_and_a_cpython_peer_aggregating_securely_hold_one_model_that_beats_their_local_models(
    server_url: str,
    pages: list[webdriver.Chrome],
    split: Split,
    local_only: list[float],
    topology: Topology,
    tmp_path: Path,
) -> None:
    task = decentralized_mnist(f"mnist-{topology}", topology, secure=True)
    together = train_together(server_url, pages, task, split, tmp_path)
    print(f"{topology}: together {together:.3f}, local-only {', '.join(f'{a:.3f}' for a in local_only)}")
    assert all(together > alone for alone in local_only)


def test_a_page_closed_in_an_exchange_is_left_out_and_the_others_finish(
    server_url: str, pages: list[webdriver.Chrome], split: Split, tmp_path: Path
) -> None:
    started = time.monotonic()
    train_together(server_url, pages, DROP_TASK, split, tmp_path, close_in_exchange=pages[-1])
    print(f"with a page closed in an exchange: {time.monotonic() - started:.0f} s")
