"""Headless Chromium via Selenium with the flags PyDisco needs: WebGPU on SwiftShader, no outside calls."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # WebRTC between tabs on one machine without an mDNS resolver; and no autofill-server queries, which
    # Chromium itself sends to Google about any page with form fields (browser traffic, not the page's: the
    # no-outside-request test must see only what the page loads)
    "--disable-features=WebRtcHideLocalIpsWithMdns,AutofillServerCommunication",
]
WEBGPU_FLAG = "--enable-unsafe-webgpu"  # without it requestAdapter() returns null in headless Chromium


@contextlib.contextmanager
def chromium(
    webgpu: bool = True, extra_flags: tuple[str, ...] = (), net_log: Path | None = None, net_bytes: bool = False
) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with its own profile, logging the console (and the network, into `net_log`;
    with `net_bytes`, every byte sent and received too).

    The NetLog sees every request of the browser process, the page's workers included, and is complete
    once the browser has quit, i.e. after this context exits.
    """
    profile = tempfile.mkdtemp(prefix="pydisco-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    mode = "Everything" if net_bytes else "Default"
    net_flags = [f"--log-net-log={net_log}", f"--net-log-capture-mode={mode}"] if net_log else []
    for flag in [*BASE_FLAGS, *([WEBGPU_FLAG] if webgpu else []), *net_flags, *extra_flags]:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_state(driver: webdriver.Chrome, states: tuple[str, ...] = ("ready", "error"), timeout: float = 60) -> str:
    """Wait until #status's data-state is one of `states`; returns it (or the last state seen on timeout)."""
    deadline, state = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        state = driver.execute_script("return document.getElementById('status')?.dataset.state || ''")
        if state in states:
            break
        time.sleep(0.1)
    return state


def page_requests(net_log: Path, page_url: str) -> list[str]:
    """URLs of every request made on behalf of the page at `page_url` (its workers too), from a NetLog.

    Requests are attributed by their network isolation key, whose first part is the top frame's site; the
    browser's own background traffic (updates, start page) has another key and is left out.
    """
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    parts = urlsplit(page_url)
    site = f"{parts.scheme}://{parts.hostname}"
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start_job and e.get("params", {}).get("network_isolation_key", "").split(" ")[0] == site
    ]


def bytes_sent(net_log: Path) -> bytes:
    """Everything the browser wrote to its sockets (a NetLog captured with net_bytes=True), in order."""
    log = json.loads(net_log.read_text())
    sent = log["constants"]["logEventTypes"]["SOCKET_BYTES_SENT"]
    return b"".join(
        base64.b64decode(e["params"]["bytes"]) for e in log["events"] if e["type"] == sent and "bytes" in e["params"]
    )
