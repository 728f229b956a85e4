"""The promise on the home page, checked on the wire: a person's data never leaves the page. Chromium logs every
byte it writes to any socket (its NetLog, workers included) while a page reads a sample CSV into the task form and
trains a federated task together with the server on a file of passengers; none of the file's values is in it,
while the task's id, the API calls and the model updates are (so the log did see the traffic)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from selenium.webdriver.support.ui import Select

from harness.chromium import bytes_sent, chromium, wait_for_state
from py_cli.federated import create_task
from tests.browser.test_local_training import start_training, wait_result
from tests.fixtures import titanic_like_csv, titanic_like_task

# values only this file holds: a name, a fare and a whole row as written
MARKERS = ("Quixotic Zebrafinch", "31415.92653", '9999,1,1,"Quixotic Zebrafinch",female,47.5,2,31415.92653,C')


def test_no_byte_of_the_data_leaves_the_page(server_url: str, tmp_path: Path) -> None:
    task = replace(titanic_like_task(epochs=2), id="wire-check", title="Wire check", scheme="federated")
    create_task(server_url, task)
    data = tmp_path / "passengers.csv"
    data.write_text(titanic_like_csv(200) + MARKERS[2] + "\n")
    net_log = tmp_path / "netlog.json"
    with chromium(net_log=net_log, net_bytes=True) as page:
        page.get(server_url + "/")
        assert wait_for_state(page, timeout=180) == "ready"
        page.find_element("css selector", "#create-details summary").click()
        page.find_element("id", "task-form-sample").send_keys(str(data))  # read in the page for its columns
        deadline = time.monotonic() + 30
        while "PassengerId" not in page.find_element("id", "task-form-columns").text:
            assert time.monotonic() < deadline, "the sample was not read"
            time.sleep(0.2)
        Select(page.find_element("id", "task-select")).select_by_value(task.id)
        deadline = time.monotonic() + 30
        while not page.find_element("id", "task-summary").text.startswith(task.title):
            assert time.monotonic() < deadline, "the task was not taken"
            time.sleep(0.2)
        page.find_element("id", "data-files").send_keys(str(data))
        while "Examples per label" not in page.find_element("id", "data-preview").text:
            assert time.monotonic() < deadline, page.find_element("id", "data-problem").text
            time.sleep(0.2)
        assert page.find_element("id", "collaborate").is_selected()  # together, through the server
        start_training(page)
        assert wait_result(page, 300) == "done", page.find_element("id", "train-result").text
        assert "Round" in page.find_element("id", "federation").text
    sent = bytes_sent(net_log)
    assert b"GET /api/tasks HTTP/1.1" in sent and b"wire-check" in sent  # the log holds the page's traffic
    assert len(sent) > 2 * 4 * 1000  # and the model updates sent in each round
    for marker in MARKERS:
        assert marker.encode() not in sent, marker
