"""Creating a task from the page's form, as a new user would: a sample CSV gives the columns (read in the page,
never uploaded), each bad field is named next to it with nothing created, the ε of the privacy settings shows as
they are typed, the server's admin token is asked for, and the created task appears in another page's list
without a reload and trains, from the seed's weights or from uploaded ones. Sample images or text fill in the
image and text fields."""

from __future__ import annotations

import contextlib
import json
import struct
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.support.ui import Select

from harness.chromium import chromium, wait_for_state
from harness.server_process import running_server
from py_shared.models import build_model
from py_shared.safetensors_file import flat_to_safetensors, model_to_safetensors
from py_shared.task import MLPModel, TaskDefinition, task_from_json
from py_shared.task_form import planned_epsilon
from py_shared.weights import layout
from tests.browser.conftest import screenshots
from tests.browser.test_home import listed
from tests.browser.test_local_training import choose, first_train_loss, start_training, wait_result
from tests.fixtures import digits_folder, titanic_like_csv

ADMIN = "form-admin-token"


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("admin-server")
    with running_server(data, log_path=data / "server.log", extra_args=("--admin-token", ADMIN)) as url:
        yield url


@pytest.fixture(scope="module")
def two_pages(admin_server: str) -> Iterator[tuple[webdriver.Chrome, webdriver.Chrome]]:
    with contextlib.ExitStack() as stack:
        opened = []
        for _ in range(2):
            page = stack.enter_context(chromium())
            page.get(admin_server + "/")
            assert wait_for_state(page, timeout=180) == "ready"
            opened.append(page)
        yield opened[0], opened[1]


def fill(page: webdriver.Chrome, field: str, value: str) -> None:
    element = page.find_element("id", f"task-form-{field}")
    element.clear()
    element.send_keys(value)


def error_of(page: webdriver.Chrome, field: str) -> str:
    return str(page.find_element("id", f"task-form-{field}-error").text)


def server_tasks(url: str) -> set[str]:
    with urllib.request.urlopen(url + "/api/tasks") as r:
        return {t["id"] for t in json.loads(r.read())["tasks"]}


def wait_text(page: webdriver.Chrome, element_id: str, words: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while words not in (text := page.find_element("id", element_id).text):
        assert time.monotonic() < deadline, f"#{element_id} never said {words!r}: {text!r}"
        time.sleep(0.2)
    return str(text)


def test_a_tabular_task_made_in_the_form_is_listed_on_another_page_and_trains(
    two_pages: tuple[webdriver.Chrome, webdriver.Chrome], admin_server: str, tmp_path: Path
) -> None:
    creator, other = two_pages
    sample = tmp_path / "passengers.csv"
    sample.write_text(titanic_like_csv(120))
    creator.find_element("css selector", "#create-details summary").click()
    fill(creator, "title", "Passengers from a form")
    creator.find_element("id", "task-form-sample").send_keys(str(sample))
    table = creator.find_element("id", "task-form-columns")
    deadline = time.monotonic() + 30
    while not table.is_displayed():
        assert time.monotonic() < deadline, error_of(creator, "columns")
        time.sleep(0.2)
    assert "Pclass" in table.text and "male, female" in table.text  # the columns and their sample values
    roles = {"PassengerId": "ignore", "Survived": "label", "Name": "ignore", "Embarked": "categorical"}
    for k, row in enumerate(table.find_elements("css selector", "tr")[1:]):
        column = row.find_element("css selector", "td").text
        if column in roles:
            Select(creator.find_element("id", f"task-form-role-{k}")).select_by_value(roles[column])
    Select(creator.find_element("id", "task-form-scheme")).select_by_value("local")
    fill(creator, "min_participants", "1")
    fill(creator, "epochs", "0")
    fill(creator, "clip_norm", "1")
    fill(creator, "noise_multiplier", "1.1")
    creator.find_element("id", "task-form-create").click()
    assert "must be at least 1" in wait_text(creator, "task-form-epochs-error", "at least 1")
    assert "noise" not in error_of(creator, "noise_multiplier")  # a valid field says nothing
    fill(creator, "epochs", "3")
    expected = planned_epsilon({"noise_multiplier": "1.1", "clip_norm": "1", "delta": "0.00001", "epochs": "3"})
    assert expected is not None
    wait_text(creator, "task-form-epsilon", f"ε = {expected:.2f}")  # updated as the creator types
    fill(creator, "clip_norm", "0")
    fill(creator, "noise_multiplier", "0")
    creator.find_element("id", "task-form-create").click()
    wait_text(creator, "task-form-admin_token-error", "admin token")  # the server asks for its token
    assert "passengers-from-a-form" not in server_tasks(admin_server)  # nothing created on invalid input
    fill(creator, "admin_token", ADMIN)
    creator.find_element("id", "task-form-create").click()
    wait_text(creator, "task-form-result", "Created")
    assert "passengers-from-a-form" in server_tasks(admin_server)
    deadline = time.monotonic() + 20
    while "Passengers from a form" not in listed(other, "passengers-from-a-form"):
        assert time.monotonic() < deadline, "the other page never listed the new task"
        time.sleep(0.3)
    assert creator.find_element("id", "task-select").get_attribute("value") == "passengers-from-a-form"
    screenshots(creator, "create-task")  # the form, its columns table and messages; checked on a phone
    choose(creator, "data-files", sample)  # the sample is data of the task's shape: it trains alone
    start_training(creator)
    assert wait_result(creator, 300) == "done", creator.find_element("id", "train-result").text
    assert first_train_loss(creator) < 1.5  # from the seed's weights

    # the same task again, from uploaded weights: another model's are refused next to the field, these are used
    made = task_from_json(json.loads(urllib.request.urlopen(f"{admin_server}/api/tasks/passengers-from-a-form").read()))
    other_model = tmp_path / "other.safetensors"
    other_model.write_bytes(model_to_safetensors(build_model(replace(made, model=MLPModel(hidden=(3,))))))
    fill(creator, "title", "Passengers from weights")
    fill(creator, "id", "passengers-from-weights")
    fill(creator, "epochs", "1")
    creator.find_element("id", "task-form-initial_weights").send_keys(str(other_model))
    creator.find_element("id", "task-form-create").click()
    assert "does not fit this model" in wait_text(creator, "task-form-initial_weights-error", "initial_model")
    assert "passengers-from-weights" not in server_tasks(admin_server)
    creator.find_element("id", "task-form-initial_weights").send_keys(str(confident_weights(made, tmp_path)))
    creator.find_element("id", "task-form-create").click()
    wait_text(creator, "task-form-result", "Created")
    assert wait_text(creator, "task-summary", "Passengers from weights")
    choose(creator, "data-files", sample)
    start_training(creator)
    assert wait_result(creator, 300) == "done", creator.find_element("id", "train-result").text
    assert first_train_loss(creator) > 5  # it started from the upload: every row called class 0 with certainty


def confident_weights(task: TaskDefinition, folder: Path) -> Path:
    """Weights of `task`'s model that call every example class 0 with certainty (an output bias of 40, every other
    weight 0), as a .safetensors file."""
    slots = layout(build_model(task))
    values = [0.0] * sum(s.size for s in slots)
    assert slots[-1].name.endswith(".bias") and slots[-1].size == 2
    values[slots[-1].offset] = 40.0  # the output layer's bias comes last
    path = folder / "confident.safetensors"
    path.write_bytes(flat_to_safetensors(slots, struct.pack(f"<{len(values)}f", *values)))
    return path


def test_sample_images_or_a_sample_text_fill_in_the_form(
    two_pages: tuple[webdriver.Chrome, webdriver.Chrome], tmp_path: Path
) -> None:
    page = two_pages[1]
    details = page.find_element("id", "create-details")
    if details.get_attribute("open") is None:
        page.find_element("css selector", "#create-details summary").click()
    Select(page.find_element("id", "task-form-data_kind")).select_by_value("image")
    folder = digits_folder(tmp_path / "digits", per_digit=2, digits=3, size=20)
    page.find_element("id", "task-form-data_sample").send_keys("\n".join(str(p) for p in sorted(folder.iterdir())))
    assert "20 x 20 px, grey, labels 0, 1, 2" in wait_text(page, "task-form-data_sample-hint", "Read:")
    values = {
        f: page.find_element("id", f"task-form-{f}").get_attribute("value") for f in ("width", "height", "labels")
    }
    assert values == {"width": "20", "height": "20", "labels": "0, 1, 2"}
    assert page.find_element("id", "task-form-channels").get_attribute("value") == "1"

    Select(page.find_element("id", "task-form-data_kind")).select_by_value("text")
    text = tmp_path / "play.txt"
    text.write_text("To be, or not to be:\nthat is the question.\n")
    field = page.find_element("id", "task-form-data_sample")
    field.clear()
    field.send_keys(str(text))
    wait_text(page, "task-form-data_sample-hint", "characters")
    alphabet = page.execute_script("return document.getElementById('task-form-alphabet').value")
    assert alphabet == "".join(sorted(set(text.read_text())))  # the newline too
