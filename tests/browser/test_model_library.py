"""The model library, as a person uses it: a trained model is kept in the browser and is still there after a
reload; it is used again (to test, and to train on from it), exported as a .safetensors file with its task's JSON
(read back here with the safetensors package), deleted, and imported back from the exported pair."""

from __future__ import annotations

import json
import time
from pathlib import Path

from safetensors import safe_open
from selenium import webdriver
from selenium.webdriver.support.ui import Select

from harness.chromium import wait_for_state
from py_shared.task import task_from_json
from tests.browser.conftest import screenshots
from tests.browser.test_local_training import click_when_enabled, first_train_loss, train_alone


def kept(page: webdriver.Chrome) -> list[str]:
    # read in one go: the list is redrawn whenever a model is kept (element by element, one could go stale)
    return list(
        page.execute_script("return [...document.querySelectorAll('#library-list li')].map(li => li.innerText)")
    )


def wait_kept(page: webdriver.Chrome, count: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(items := kept(page)) != count:
        assert time.monotonic() < deadline, f"the library lists {items}, not {count} model(s)"
        time.sleep(0.2)
    return items


def press(page: webdriver.Chrome, action: str, then: str = "") -> None:
    """Press the first model's button; wait until the library's message says `then`."""
    page.find_element("css selector", f"#library-list li:first-child button[data-action='{action}']").click()
    message, deadline = page.find_element("id", "library-message"), time.monotonic() + 30
    while then not in message.text:
        assert time.monotonic() < deadline, message.text
        time.sleep(0.2)


def test_a_kept_model_survives_a_reload_and_is_used_exported_deleted_and_imported(
    ready_page: webdriver.Chrome, tmp_path: Path
) -> None:
    page = ready_page
    assert kept(page) == [] and page.find_element("id", "library-empty").is_displayed()
    Select(page.find_element("id", "task-select")).select_by_value("titanic")
    click_when_enabled(page, "use-example")
    train_alone(page, 2)
    fresh_loss = first_train_loss(page)
    assert "Titanic" in wait_kept(page, 1)[0] and "validation accuracy" in kept(page)[0]
    page.refresh()
    assert wait_for_state(page, timeout=120) == "ready"
    assert "Titanic" in wait_kept(page, 1)[0]  # kept across the reload

    press(page, "use", "Using")  # test and predict with it, and train on from it
    assert page.find_element("id", "test").is_displayed() and page.find_element("id", "predict-row").is_displayed()
    assert page.find_element("id", "task-select").get_attribute("value") == "titanic"
    assert "from your kept model" in page.find_element("id", "task-summary").text
    click_when_enabled(page, "use-example")
    train_alone(page, 1)
    assert first_train_loss(page) < fresh_loss - 0.02  # it started from the trained weights, not afresh
    wait_kept(page, 2)
    screenshots(page, "library")

    page.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    press(page, "export", "Exported")
    weights, definition = tmp_path / "titanic.safetensors", tmp_path / "titanic.json"
    deadline = time.monotonic() + 30
    while not (weights.exists() and definition.exists()):
        assert time.monotonic() < deadline, f"the export did not arrive: {list(tmp_path.iterdir())}"
        time.sleep(0.2)
    time.sleep(0.5)  # the browser renames its partial download once complete
    task = task_from_json(json.loads(definition.read_text()))
    with safe_open(str(weights), "np") as exported:  # the reference reader takes our file
        names, metadata = list(exported.keys()), exported.metadata()
        assert all(exported.get_tensor(n).dtype.name == "float32" for n in names)
    assert task.id == "titanic" and names and task_from_json(json.loads(metadata["task_json"])) == task
    assert json.loads(metadata["features"]) == list(task.data.feature_columns)  # type: ignore[union-attr]

    press(page, "delete", "Deleted")
    wait_kept(page, 1)
    press(page, "delete", "Deleted")
    wait_kept(page, 0)
    page.find_element("id", "library-import").send_keys(f"{weights}\n{definition}")
    assert "imported" in wait_kept(page, 1)[0]
    press(page, "use", "Using")
    assert page.find_element("id", "test").is_displayed()
