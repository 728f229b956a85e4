"""Fixtures for headless-browser tests: one real server for the session, a fresh Chromium per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from harness.chromium import chromium, wait_for_state
from harness.server_process import running_server


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("server-data")
    with running_server(data, log_path=data / "server.log") as url:
        yield url


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def ready_page(browser: webdriver.Chrome, server_url: str) -> webdriver.Chrome:
    """The app loaded and reporting data-state=ready."""
    browser.get(server_url + "/")
    state = wait_for_state(browser, timeout=120)
    message = browser.execute_script("return document.getElementById('progress').textContent")
    assert state == "ready", f"page state {state!r}: {message}"
    return browser


def worker_file(name: str) -> Path:
    """A browser-side module of these tests, sent as source into a page worker."""
    return Path(__file__).with_name(name)
