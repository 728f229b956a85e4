"""Training in the page: a CNN learns from image files on WebGPU, the page stays responsive, errors are plain."""

from __future__ import annotations

import csv
import itertools
import json
import time
import urllib.request
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.support.ui import Select

from harness.chromium import wait_for_state
from py_cli.files import read_task
from py_shared.task import task_to_json
from tests.browser.conftest import layout_problems, screenshots
from tests.conftest import ROOT
from tests.fixtures import digits_folder, digits_task, titanic_like_csv, titanic_like_task

TICKS = """
window.__ticks = [];
window.__ticker = setInterval(() => window.__ticks.push(performance.now()), 50);
"""


def choose(page: webdriver.Chrome, element_id: str, *paths: Path) -> None:
    """Choose files in a file input and wait until the page has read the choice (its summary line changes)."""
    summary = page.find_element("id", {"task-file": "task-summary", "data-files": "data-summary"}[element_id])
    before = summary.text
    page.find_element("id", element_id).send_keys("\n".join(str(p) for p in paths))
    deadline = time.monotonic() + 30
    expected = paths[0].name if element_id == "data-files" else ""
    while summary.text in ("", before) or expected not in summary.text:
        assert time.monotonic() < deadline, f"the page did not take {paths[0].name}"
        time.sleep(0.1)


def click_when_enabled(page: webdriver.Chrome, element_id: str, timeout: float = 30) -> None:
    """Click a button once the page has enabled it, as a person would."""
    button = page.find_element("id", element_id)
    deadline = time.monotonic() + timeout
    while not button.is_enabled():
        assert time.monotonic() < deadline, f"#{element_id} never became enabled"
        time.sleep(0.1)
    button.click()


def start_training(page: webdriver.Chrome) -> None:
    """Click Train once it is enabled and wait until this run has begun."""
    result = page.find_element("id", "train-result")
    runs = int(result.get_attribute("data-run") or 0)
    click_when_enabled(page, "train-start")
    deadline = time.monotonic() + 30
    while int(result.get_attribute("data-run") or 0) == runs:
        assert time.monotonic() < deadline, "clicking Train started no run"
        time.sleep(0.1)


def wait_result(page: webdriver.Chrome, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page.find_element("id", "train-result").get_attribute("data-state")
        if state in ("done", "error", "cancelled"):
            return str(state)
        time.sleep(0.25)
    raise TimeoutError("training gave no result in time")


def test_cnn_learns_from_image_files_while_the_page_stays_responsive(
    ready_page: webdriver.Chrome, tmp_path: Path
) -> None:
    # 4 digit classes, 40 images each, 16x16: chance is 25%
    folder = digits_folder(tmp_path / "digits", per_digit=40, size=16, digits=4)
    task = tmp_path / "digits.json"
    task.write_text(json.dumps(task_to_json(digits_task(epochs=12, size=16, digits=4, learning_rate=0.01))))
    page = ready_page
    choose(page, "task-file", task)
    choose(page, "data-files", folder / "labels.csv", *sorted(folder.glob("*.png")))
    preview, deadline = page.find_element("id", "data-preview"), time.monotonic() + 30
    while "Examples per label: 0: 40 · 1: 40 · 2: 40 · 3: 40" not in preview.text:  # counted before training
        assert time.monotonic() < deadline, preview.text
        time.sleep(0.2)
    page.execute_script(TICKS)
    start_training(page)
    charts, message, points, lefts = (
        page.find_element("id", "train-charts"),
        page.find_element("id", "train-message"),
        set(),
        set(),
    )
    while page.find_element("id", "train-result").get_attribute("data-state") == "running":
        points.add(int(charts.get_attribute("data-points") or 0))
        lefts.add(" left" in message.text)
        time.sleep(0.2)
    assert wait_result(page) == "done", page.find_element("id", "train-result").text
    ticks = page.execute_script("clearInterval(window.__ticker); return window.__ticks")
    # the charts grew epoch by epoch while it trained, and the time left was said
    assert len(points - {0}) >= 3 and charts.get_attribute("data-points") == "12", points
    assert len(charts.find_elements("css selector", ".chart canvas")) == 2 and True in lefts
    accuracy = float(page.find_element("id", "train-result").get_attribute("data-val-accuracy") or 0)
    assert accuracy >= 0.6, f"validation accuracy {accuracy} is not clearly above chance (0.25)"
    rows = page.find_element("id", "train-epochs").find_elements("css selector", "tbody tr")
    assert len(rows) == 12
    # the main thread kept ticking all along: training ran in the worker
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 100 and max(gaps) < 1000, f"longest main-thread stall {max(gaps):.0f} ms"
    assert page.find_element("id", "train-download").is_displayed()


def test_bad_files_get_plain_messages_and_training_can_be_cancelled(
    ready_page: webdriver.Chrome, tmp_path: Path
) -> None:
    page = ready_page
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": "x", "title": "X"}')
    choose(page, "task-file", broken)
    time.sleep(1)
    summary = page.find_element("id", "task-summary")
    assert "task.data: required" in summary.text and summary.get_attribute("data-state") == "error"
    assert not page.find_element("id", "train-start").is_enabled()
    not_json = tmp_path / "not.json"
    not_json.write_text('{"id": "x",')
    choose(page, "task-file", not_json)
    assert summary.text.startswith("This task file cannot be used") and summary.get_attribute("data-state") == "error"

    task = tmp_path / "titanic.json"
    task.write_text(json.dumps(task_to_json(titanic_like_task(epochs=200))))
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    choose(page, "task-file", task)
    choose(page, "data-files", wrong)
    problem, deadline = page.find_element("id", "data-problem"), time.monotonic() + 30
    while "wrong.csv: missing column(s) Pclass" not in problem.text:  # explained before any training
        assert time.monotonic() < deadline, problem.text
        time.sleep(0.2)
    assert not page.find_element("id", "train-start").is_enabled()

    page.find_element("id", "data-files").clear()
    good = tmp_path / "passengers.csv"
    good.write_text(titanic_like_csv(400))
    choose(page, "data-files", good)
    epochs = page.find_element("id", "epochs")
    for wrong_epochs in ("0", "2.5", "5000"):  # refused with a message, never silently replaced
        epochs.clear()
        epochs.send_keys(wrong_epochs)
        click_when_enabled(page, "train-start")
        result, deadline = page.find_element("id", "train-result"), time.monotonic() + 10
        while f"from 1 to 1000, not {wrong_epochs}" not in result.text:
            assert time.monotonic() < deadline, result.text
            time.sleep(0.1)
        assert result.get_attribute("data-state") == "error"
    epochs.clear()
    epochs.send_keys("200")
    start_training(page)
    deadline = time.monotonic() + 120
    while "Epoch 2/" not in page.find_element("id", "train-message").text:
        assert time.monotonic() < deadline, page.find_element("id", "train-result").text
        time.sleep(0.2)
    held = ("task-select", "task-file", "data-files", "epochs", "train-start")
    assert not any(page.find_element("id", i).is_enabled() for i in held)  # nothing changes under a run
    page.find_element("id", "train-cancel").click()
    assert wait_result(page, 60) == "cancelled", page.find_element("id", "train-result").text
    assert page.find_element("id", "train-start").is_enabled()  # ready for another run
    assert all(page.find_element("id", i).is_enabled() for i in held)
    assert page.find_element("id", "train-message").text == ""  # no stale line above the result


@pytest.mark.parametrize(("task_id", "epochs", "at_least"), [("titanic", 10, 0.7), ("mnist", 1, 0.5)])
def test_trains_a_predefined_task_on_its_example_data(
    ready_page: webdriver.Chrome, task_id: str, epochs: int, at_least: float, tmp_path: Path
) -> None:
    page = ready_page
    Select(page.find_element("id", "task-select")).select_by_value(task_id)
    click_when_enabled(page, "use-example")
    data_summary, deadline = page.find_element("id", "data-summary"), time.monotonic() + 60
    while not data_summary.text.startswith("Example data"):
        assert time.monotonic() < deadline, data_summary.text
        time.sleep(0.2)
    shown = page.find_element("id", "data-preview")  # a look at the data, and how many of each label
    while "Examples per label" not in shown.text:
        assert time.monotonic() < deadline, data_summary.text
        time.sleep(0.2)
    figures = "figure" if task_id == "mnist" else "tr"
    assert len(shown.find_elements("css selector", figures)) >= 5, shown.text
    field = page.find_element("id", "epochs")
    field.clear()
    field.send_keys(str(epochs))
    together = page.find_element("id", "collaborate")
    assert together.is_displayed() and together.is_selected()  # federated tasks are joined unless one opts out
    together.click()  # train alone
    start_training(page)
    assert wait_result(page) == "done", page.find_element("id", "train-result").text
    result = page.find_element("id", "train-result")
    accuracy = float(result.get_attribute("data-val-accuracy") or 0)
    assert accuracy >= at_least, result.text
    assert "validation accuracy" in result.text  # shown on the page, not only in an attribute
    assert page.find_element("id", "federation").get_attribute("data-state") == "off"
    if task_id == "mnist":  # predict one image, as a person would with a picture of a digit
        with zipfile.ZipFile(ROOT / "tasks" / "examples" / "mnist" / "mnist.zip") as bundle:
            image = tmp_path / "digit.png"
            image.write_bytes(bundle.read("0000.png"))
        page.find_element("id", "predict-image").send_keys(str(image))
        click_when_enabled(page, "predict-run")
        predicted = settled(page, "predict-result", 30)
        assert predicted.get_attribute("data-predicted") in tuple("0123456789"), predicted.text


def test_a_decentralized_task_is_joined_as_a_peer(ready_page: webdriver.Chrome, server_url: str) -> None:
    page = ready_page
    task = {"id": "peers-only", "title": "Peers only", "data": {"kind": "tabular", "feature_columns": ["a"],
            "label_column": "y", "label_values": ["0", "1"]}, "model": {"kind": "mlp", "hidden": [4]},
            "scheme": "decentralized", "min_participants": 2}  # fmt: skip
    request = urllib.request.Request(f"{server_url}/api/tasks", json.dumps({"task": task}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 201
    page.refresh()
    assert wait_for_state(page, timeout=120) == "ready"
    hint = page.find_element("id", "collaboration-hint")
    for task_id, words in [("peers-only", "straight to the other peers"), ("titanic", "only model updates")]:
        Select(page.find_element("id", "task-select")).select_by_value(task_id)
        deadline = time.monotonic() + 30
        while words not in hint.text:
            assert time.monotonic() < deadline, f"{task_id}: the page does not say how it trains together"
            time.sleep(0.2)
        assert page.find_element("id", "collaborate").is_displayed()


PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}


def test_on_a_phone_nothing_scrolls_sideways_and_every_control_is_a_finger_wide(ready_page: webdriver.Chrome) -> None:
    page = ready_page
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        assert page.execute_script("return document.documentElement.clientWidth") == PHONE["width"]
        Select(page.find_element("id", "task-select")).select_by_value("titanic")  # the longest description
        click_when_enabled(page, "use-example")
        page.find_element("id", "task-details").click()  # opened, as a curious person would
        assert layout_problems(page) == []
        train_alone(page, 1)
        assert layout_problems(page) == []  # with the epochs table and the result shown
    finally:
        page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    screenshots(page, "train")  # the training board, after a run
    # the charts draw the table's figures: loss then accuracy, training then validation, per epoch
    drawn = page.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(h => h.chart.data)", "#train-charts .chart"
    )
    row = [c.text for c in page.find_elements("css selector", "#train-epochs tbody tr td")]
    loss, accuracy = drawn
    assert loss[0] == [1] and accuracy[0] == [1]
    assert [f"{loss[1][0]:.4f}", f"{accuracy[1][0]:.1%}", f"{loss[2][0]:.4f}", f"{accuracy[2][0]:.1%}"] == row[1:5]


def test_a_person_alone_is_told_who_is_awaited_and_can_train_alone(ready_page: webdriver.Chrome) -> None:
    page = ready_page
    Select(page.find_element("id", "task-select")).select_by_value("titanic")  # federated: 2 participants
    click_when_enabled(page, "use-example")
    field = page.find_element("id", "epochs")
    field.clear()
    field.send_keys("2")
    assert page.find_element("id", "collaborate").is_selected()
    start_training(page)
    alone, deadline = page.find_element("id", "train-alone"), time.monotonic() + 60
    while not alone.is_displayed():
        assert time.monotonic() < deadline, page.find_element("id", "federation").text
        time.sleep(0.2)
    assert (
        "Waiting for another participant to join this task (1 of 2 here)" in page.find_element("id", "federation").text
    )
    result = page.find_element("id", "train-result")
    runs = int(result.get_attribute("data-run") or 0)
    alone.click()
    deadline = time.monotonic() + 120
    while int(result.get_attribute("data-run") or 0) == runs or result.get_attribute("data-state") != "done":
        assert time.monotonic() < deadline, result.text
        time.sleep(0.2)
    assert not page.find_element("id", "collaborate").is_selected()
    assert page.find_element("id", "federation").get_attribute("data-state") == "off"  # it trained alone


def train_alone(page: webdriver.Chrome, epochs: int) -> None:
    """Train the chosen task on the chosen data for `epochs`, not together, until done."""
    field = page.find_element("id", "epochs")
    field.clear()
    field.send_keys(str(epochs))
    page.find_element("id", "collaborate").click()
    start_training(page)
    assert wait_result(page) == "done", page.find_element("id", "train-result").text


def first_train_loss(page: webdriver.Chrome) -> float:
    """The training loss of the run's first epoch, as its table shows it."""
    return float(page.find_element("css selector", "#train-epochs tbody tr:first-child td:nth-child(2)").text)


def settled(page: webdriver.Chrome, element_id: str, timeout: float) -> Any:
    """#element_id once its data-state says done or error."""
    element, deadline = page.find_element("id", element_id), time.monotonic() + timeout
    while element.get_attribute("data-state") not in ("done", "error"):
        assert time.monotonic() < deadline, element.text
        time.sleep(0.2)
    return element


def test_a_trained_model_is_evaluated_class_by_class_and_predicts_a_file_and_a_typed_row(
    ready_page: webdriver.Chrome, tmp_path: Path
) -> None:
    page = ready_page
    Select(page.find_element("id", "task-select")).select_by_value("titanic")
    click_when_enabled(page, "use-example")
    train_alone(page, 5)
    assert page.find_element("id", "test").is_displayed()
    page.find_element("id", "test-files").send_keys(str(ROOT / "tasks" / "examples" / "titanic" / "titanic.csv"))
    click_when_enabled(page, "test-run")
    result = settled(page, "test-result", 60)
    assert result.get_attribute("data-state") == "done", result.text
    assert float(result.get_attribute("data-accuracy") or 0) > 0.7, result.text
    rows = [
        [c.text for c in r.find_elements("css selector", "th, td")]
        for r in page.find_elements("css selector", "#test-classes tr")
    ]
    assert rows[0] == ["class", "accuracy", "called 0", "called 1"] and [r[0] for r in rows[1:]] == ["0", "1"]
    confusion = [[int(v) for v in r[2:]] for r in rows[1:]]
    assert sum(map(sum, confusion)) == int(result.text.split(" on ")[1].split()[0])  # every test example
    correct = (confusion[0][0] + confusion[1][1]) / sum(map(sum, confusion))
    assert abs(correct - float(result.get_attribute("data-accuracy") or 0)) < 1e-6
    assert page.find_element("id", "test-download").is_displayed()
    screenshots(page, "test")

    # a file without labels: every row predicted, downloaded as CSV beside the file's own cells
    with (ROOT / "tasks" / "examples" / "titanic" / "titanic.csv").open() as f:
        table = list(csv.reader(f))
    at = table[0].index("Survived")
    unlabelled = tmp_path / "passengers.csv"
    with unlabelled.open("w", newline="") as f:
        csv.writer(f).writerows([c for i, c in enumerate(r) if i != at] for r in table[:101])
    page.find_element("id", "test-files").clear()
    deadline = time.monotonic() + 10
    while page.find_element("id", "test-run").is_enabled():  # the page saw the choice emptied
        assert time.monotonic() < deadline, "the test button stayed on without a file"
        time.sleep(0.1)
    page.find_element("id", "test-files").send_keys(str(unlabelled))
    click_when_enabled(page, "test-run")
    deadline = time.monotonic() + 60
    while result.get_attribute("data-predictions") is None:  # the evaluation's "done" is still shown at first
        assert time.monotonic() < deadline and result.get_attribute("data-state") != "error", result.text
        time.sleep(0.2)
    assert result.get_attribute("data-predictions") == "100" and result.get_attribute("data-accuracy") is None
    downloads = tmp_path / "downloads"
    page.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    page.find_element("id", "test-download").click()
    saved, deadline = downloads / "titanic-predictions.csv", time.monotonic() + 30
    while not saved.exists():
        assert time.monotonic() < deadline, "the predictions did not arrive"
        time.sleep(0.2)
    time.sleep(0.5)  # the browser renames its partial download once complete
    predicted = list(csv.reader(saved.open()))
    assert predicted[0] == [c for i, c in enumerate(table[0]) if i != at] + ["predicted"]
    assert [r[:-1] for r in predicted[1:]] == [[c for i, c in enumerate(r) if i != at] for r in table[1:101]]
    labels = [r[at] for r in table[1:101]]
    agree = sum(r[-1] == label for r, label in zip(predicted[1:], labels, strict=True)) / 100
    assert agree > 0.7, agree  # in the file's order: the predictions match its (withheld) labels

    typed = {"Pclass": "1", "Sex": "female", "Age": "29", "SibSp": "0", "Parch": "0", "Fare": "211", "Embarked": "S"}
    for column, value in typed.items():
        page.find_element("css selector", f"#predict-row input[data-column='{column}']").send_keys(value)
    click_when_enabled(page, "predict-run")
    predicted = settled(page, "predict-result", 30)
    assert predicted.get_attribute("data-predicted") == "1", predicted.text  # a first-class woman survives


def test_a_text_task_s_model_continues_a_prompt_at_a_temperature(ready_page: webdriver.Chrome, tmp_path: Path) -> None:
    page = ready_page
    task = read_task("shakespeare")
    spec = replace(task.data, context_length=16)
    training = replace(task.training, epochs=1, steps_per_epoch=10, validation_fraction=0.1)
    small = replace(task, id="verses", title="Verses", data=spec, training=training, scheme="local",
                    min_participants=1)  # fmt: skip
    (tmp_path / "verses.json").write_text(json.dumps(task_to_json(small)))
    (tmp_path / "verses.txt").write_text("Now, fair Hippolyta, our nuptial hour draws on apace.\n" * 60)
    choose(page, "task-file", tmp_path / "verses.json")
    choose(page, "data-files", tmp_path / "verses.txt")
    start_training(page)
    assert wait_result(page, 300) == "done", page.find_element("id", "train-result").text
    assert page.find_element("id", "generate").is_displayed()
    length = page.find_element("id", "generate-length")
    length.clear()
    length.send_keys("12")
    temperature = page.find_element("id", "generate-temperature")
    temperature.clear()
    temperature.send_keys("0")  # the likeliest token each time
    page.find_element("id", "generate-run").click()
    written = settled(page, "generate-result", 120)
    assert written.get_attribute("data-state") == "done", written.text
    text = written.get_attribute("textContent") or ""
    assert len(text) == 12 and set(text) <= set(spec.alphabet), repr(text)  # type: ignore[union-attr]
    screenshots(page, "generate")
    temperature.clear()
    temperature.send_keys("-1")
    page.find_element("id", "generate-run").click()
    deadline = time.monotonic() + 30
    while written.get_attribute("data-state") != "error":  # refused, with the reason
        assert time.monotonic() < deadline, written.text
        time.sleep(0.2)
    assert "temperature must be from 0" in written.text
