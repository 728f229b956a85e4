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


CONTROLS = "button, select, input, textarea, summary, #collaboration label, #task-form label.check, #task-list a"


def layout_problems(page: webdriver.Chrome) -> list[str]:
    """What makes the page hard to use on a phone: sideways scrolling, controls smaller than a fingertip."""
    width = page.execute_script("return document.documentElement.clientWidth")
    scroll = page.execute_script("return document.documentElement.scrollWidth")
    problems = [f"the page is {scroll} px wide on a {width} px screen"] if scroll > width else []
    small = page.execute_script(
        """return [...document.querySelectorAll(arguments[0])]
             .filter((e) => e.offsetParent !== null && e.type !== "checkbox")
             .map((e) => [e.id || e.tagName, e.getBoundingClientRect()])
             .filter(([, r]) => r.width < 44 || r.height < 44)
             .map(([name, r]) => `${name} ${Math.round(r.width)}x${Math.round(r.height)}`)""",
        CONTROLS,
    )
    return problems + [f"smaller than 44 x 44 px: {', '.join(small)}"] * bool(small)


SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SIZES = {"phone": {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
         "desktop": {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False}}  # fmt: skip


def screenshots(page: webdriver.Chrome, screen: str) -> list[Path]:
    """Save the whole page at phone and desktop size under test-artifacts/screenshots (not committed), and
    check it at phone size: nothing scrolls sideways, no control is smaller than a fingertip."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    try:
        for size, metrics in SIZES.items():
            page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            if size == "phone":
                problems = layout_problems(page)
                assert problems == [], f"{screen}: {problems}"
            height = page.execute_script("return document.documentElement.scrollHeight")  # at this width
            page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": max(height, 1)})
            path = SCREENSHOTS / f"{screen}-{size}.png"
            assert page.save_screenshot(str(path)), path
            saved.append(path)
    finally:
        page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return saved
