"""The page boots offline into Python + tinygrad on WebGPU, and says plainly when the browser cannot."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from selenium import webdriver

from harness.chromium import chromium, page_requests, wait_for_state


def test_page_reaches_ready_with_webgpu_adapter_named(ready_page: webdriver.Chrome) -> None:
    status = ready_page.find_element("id", "status")
    assert status.get_attribute("data-state") == "ready"
    adapter = status.get_attribute("data-webgpu")
    assert adapter and adapter != "none"
    # the environment panel tells the user which GPU trains their model
    assert adapter in ready_page.find_element("id", "app").text


def test_page_requests_nothing_outside_its_own_origin(server_url: str, tmp_path: Path) -> None:
    net_log = tmp_path / "netlog.json"
    with chromium(net_log=net_log) as driver:
        driver.get(server_url + "/")
        assert wait_for_state(driver, timeout=120) == "ready"
    urls = page_requests(net_log, server_url)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(server_url))
    outside = [u for u in urls if not u.startswith(origin + "/")]
    assert outside == []
    # the log must see what the worker fetched too, or this test would prove nothing
    for fetched_by_worker in ["pyodide.asm.wasm", "tinygrad-0.14.0-py3-none-any.whl", "www/webgpu.js"]:
        assert any(fetched_by_worker in u for u in urls)


def test_without_webgpu_the_page_explains_what_is_missing(server_url: str) -> None:
    with chromium(webgpu=False) as driver:
        driver.get(server_url + "/")
        assert wait_for_state(driver, timeout=60) == "error"
        status = driver.find_element("id", "status")
        assert status.get_attribute("data-webgpu") == "none"
        message = status.text
        assert "WebGPU" in message
        assert "Chrome" in message  # and which browsers have it
        # what the server offers is shown all the same
        assert len(driver.find_elements("css selector", "#task-list li")) >= 6
        assert driver.find_element("id", "home").is_displayed()


def test_without_jspi_the_page_explains_what_is_missing(server_url: str) -> None:
    # Chromium 156 cannot turn JSPI off; a browser without it (Safari, older Chrome) looks like this
    with chromium() as driver:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": "delete WebAssembly.Suspending;"})
        driver.get(server_url + "/")
        assert wait_for_state(driver, timeout=60) == "error"
        message = driver.find_element("id", "status").text
        lacking = message.split("lacks:")[1].split("Use a")[0]
        assert "JSPI" in lacking
        assert "WebGPU" not in lacking  # only what is really missing is named
        assert "Chrome" in message


def test_the_page_can_be_installed_as_an_app(ready_page: webdriver.Chrome) -> None:
    manifest = ready_page.execute_cdp_cmd("Page.getAppManifest", {})
    assert manifest["url"].endswith("/www/manifest.webmanifest") and manifest["errors"] == []
    assert ready_page.execute_cdp_cmd("Page.getInstallabilityErrors", {})["installabilityErrors"] == []
