"""The home list: the server's tasks with what each shares and who is online, kept fresh without a reload, and a
task opened from its link."""

from __future__ import annotations

import time
from dataclasses import replace

import segno
from selenium import webdriver

from harness.chromium import wait_for_state
from py_cli.federated import create_task
from tests.browser.conftest import screenshots
from tests.fixtures import titanic_like_task


def listed(page: webdriver.Chrome, task_id: str) -> str:
    items = page.find_elements("css selector", f"#task-list li[data-task='{task_id}']")
    return str(items[0].text) if items else ""


def test_the_list_shows_each_task_s_badges_and_takes_in_a_new_task_without_a_reload(
    ready_page: webdriver.Chrome, server_url: str
) -> None:
    page = ready_page
    assert page.find_element("id", "home").is_displayed()
    assert "Your data stays on this device" in page.find_element("id", "home").text
    titanic = listed(page, "titanic")
    assert "Titanic" in titanic and "tabular data" in titanic and "federated" in titanic and "2 needed" in titanic
    task = replace(titanic_like_task(), id="home-new", title="Created elsewhere", scheme="federated",
                   min_participants=2, secure_aggregation=True)  # fmt: skip
    create_task(server_url, task)
    deadline = time.monotonic() + 20
    while not listed(page, "home-new"):
        assert time.monotonic() < deadline, "the new task never appeared"
        time.sleep(0.3)
    assert "secure aggregation" in listed(page, "home-new") and "0 online" in listed(page, "home-new")
    options = [o.get_attribute("value") for o in page.find_elements("css selector", "#task-select option")]
    assert "home-new" in options  # and it can be chosen for training
    screenshots(page, "home")


def test_a_task_opens_from_its_link(browser: webdriver.Chrome, server_url: str) -> None:
    browser.get(server_url + "/#/task/mnist")
    assert wait_for_state(browser, timeout=120) == "ready"
    deadline = time.monotonic() + 20
    while browser.find_element("id", "task-select").get_attribute("value") != "mnist":
        assert time.monotonic() < deadline, "the link did not open its task"
        time.sleep(0.2)
    assert browser.find_element("id", "task-summary").text.startswith("Handwritten digits (MNIST)")
    # the link, and a QR code of it for a phone: the same symbol segno draws here
    link = server_url + "/#/task/mnist"
    assert browser.find_element("id", "task-link").text == link
    expected = segno.make(link, error="m").svg_data_uri(scale=4, border=2)
    assert browser.find_element("id", "task-qr").get_attribute("src") == expected
    browser.find_element("css selector", "#task-list li[data-task='titanic'] a").click()  # another task's link
    while browser.find_element("id", "task-select").get_attribute("value") != "titanic":
        assert time.monotonic() < deadline, "clicking a task's link did not open it"
        time.sleep(0.2)
    browser.execute_script("location.hash = '#/task/gone'")  # an old link
    summary = browser.find_element("id", "task-summary")
    while "no task “gone”" not in summary.text:
        assert time.monotonic() < deadline, summary.text
        time.sleep(0.2)
    assert summary.get_attribute("data-state") == "error"
