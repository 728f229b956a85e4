"""Files to predict: labelled or not, read as for training, and predictions put back in the file's order."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from py_cli.files import read_task
from py_shared.data.bundle import labelled_images
from py_shared.data.examples import DataError
from py_shared.data.prediction_input import file_order, for_prediction, is_labelled
from py_shared.data.tabular import prepare_tabular, to_csv
from py_shared.task import TabularData
from tests.fixtures import digits_folder, digits_task, titanic_like_csv, titanic_like_task

SEED = 7


def _without(text: str, column: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    at = rows[0].index(column)
    return to_csv(
        [c for i, c in enumerate(rows[0]) if i != at], [[c for i, c in enumerate(r) if i != at] for r in rows[1:]]
    )


def test_predictions_of_a_shuffled_read_come_back_in_the_file_s_order() -> None:
    task = titanic_like_task()
    text = titanic_like_csv(40)
    assert isinstance(task.data, TabularData)
    train, _, _, _ = prepare_tabular(text, task.data, "t.csv", 0.0, SEED)
    in_file = [int(r[1]) for r in list(csv.reader(io.StringIO(text)))[1:]]
    assert list(train.labels) != in_file  # the read is shuffled ...
    assert file_order(list(train.labels), SEED) == in_file  # ... and put back


def test_a_csv_without_its_label_column_reads_as_the_same_examples_with_its_own_cells_kept() -> None:
    task = titanic_like_task()
    assert isinstance(task.data, TabularData)
    labelled = titanic_like_csv(30)
    unlabelled = _without(labelled, "Survived").encode()
    assert is_labelled(task, {"t.csv": labelled.encode()}) and not is_labelled(task, {"u.csv": unlabelled})
    inputs = for_prediction(task, {"u.csv": unlabelled})
    assert inputs.header == ["PassengerId", "Pclass", "Name", "Sex", "Age", "SibSp", "Fare", "Embarked"]
    assert [r[0] for r in inputs.rows] == [str(i) for i in range(1, 31)] and inputs.rows[0][2] == "Doe, Passenger 1"
    want, _, stats, _ = prepare_tabular(labelled, task.data, "t.csv", 0.0, SEED)
    (text,) = inputs.files.values()
    got, _, _, rows = prepare_tabular(text.decode(), task.data, "u.csv", 0.0, SEED, stats)
    assert got.features == want.features and rows.skipped_without_label == 0
    # a labelled file's labels are ignored: the same examples
    again = for_prediction(task, {"t.csv": labelled.encode()})
    assert again.files == {"t.csv": text} and again.rows == inputs.rows


def test_a_csv_row_of_the_wrong_length_or_a_missing_feature_column_is_named() -> None:
    task = titanic_like_task()
    assert isinstance(task.data, TabularData)
    broken = _without(titanic_like_csv(5), "Survived").replace("\n3,", "\n3,extra,", 1)
    with pytest.raises(DataError, match=r"u\.csv, line 4: 9 fields where the header has 8"):
        for_prediction(task, {"u.csv": broken.encode()})
    no_fare = _without(titanic_like_csv(5), "Fare")
    (text,) = for_prediction(task, {"u.csv": no_fare.encode()}).files.values()
    with pytest.raises(DataError, match="missing column"):
        prepare_tabular(text.decode(), task.data, "u.csv", 0.0, SEED)


def test_images_are_labelled_by_labels_csv_or_label_folders_and_predicted_by_path(tmp_path: Path) -> None:
    task = digits_task(digits=3)
    folder = digits_folder(tmp_path / "digits", per_digit=2, digits=3)
    by_folder = {f"{p.name[0]}/{p.name}": p.read_bytes() for p in folder.glob("*.png")}  # 0/0_000.png
    assert is_labelled(task, by_folder)
    loose = {f"test/{path.replace('/', '-')}": data for path, data in by_folder.items()}
    assert not is_labelled(task, loose)  # a folder that is not a label
    assert is_labelled(task, {**loose, "labels.csv": b"filename,label\n"})
    inputs = for_prediction(task, loose)
    assert inputs.header == ["file"] and [r[0] for r in inputs.rows] == sorted(loose)
    read = labelled_images(inputs.files)
    assert [(name, label) for name, label, _ in read] == [(p, "0") for p in sorted(loose)]
    assert [data for _, _, data in read] == [loose[p] for p in sorted(loose)]
    with pytest.raises(DataError, match="no image files"):
        for_prediction(task, {"notes.txt": b"hello"})


def test_a_text_task_has_no_classes_to_predict() -> None:
    task = read_task("shakespeare")
    with pytest.raises(DataError, match="writes text"):
        is_labelled(task, {"a.txt": b"hello"})
