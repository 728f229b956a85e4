"""The data preview: first rows, images or text, the examples per label, and why data does not fit its task."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from py_shared.data.preview import preview
from py_shared.task import ImageData, TextData
from tests.fixtures import digits_folder, digits_task, titanic_like_csv, titanic_like_task


def test_a_table_shows_its_first_rows_and_its_examples_per_label() -> None:
    text = titanic_like_csv(60)
    shown = preview(titanic_like_task(), {"p.csv": text.encode()})
    assert shown.problem == "" and shown.summary == "p.csv: 60 rows"
    assert shown.header[:2] == ("PassengerId", "Survived") and len(shown.rows) == 5 and shown.rows[0][0] == "1"
    survived = [line.split(",")[1] for line in text.splitlines()[1:]]
    assert shown.counts == (("0", survived.count("0")), ("1", survived.count("1")))


def test_a_table_that_does_not_fit_says_why() -> None:
    text = titanic_like_csv(10)
    no_fare = text.replace(",Fare,", ",Price,", 1)
    assert "missing column(s) Fare" in preview(titanic_like_task(), {"p.csv": no_fare.encode()}).problem
    unknown = text.replace("\n1,0,", "\n1,maybe,", 1)
    assert "label 'maybe' is not one of 0, 1" in preview(titanic_like_task(), {"p.csv": unknown.encode()}).problem
    assert "not a UTF-8" in preview(titanic_like_task(), {"p.csv": b"\xff\xfe"}).problem
    assert "takes one file" in preview(titanic_like_task(), {"a.csv": b"", "b.csv": b""}).problem


def test_images_show_their_first_examples_with_labels_and_an_unknown_label_is_named(tmp_path: Path) -> None:
    folder = digits_folder(tmp_path / "digits", per_digit=3, digits=3)
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    task = digits_task(digits=3)
    shown = preview(task, files)
    assert shown.problem == "" and len(shown.images) == 8 and shown.counts == (("0", 3), ("1", 3), ("2", 3))
    assert all(label in ("0", "1", "2") and data[:4] == b"\x89PNG" for _, label, data in shown.images)
    assert isinstance(task.data, ImageData)
    fewer = replace(task, data=replace(task.data, labels=("0", "1")))
    assert "label(s) 2 are not the task's" in preview(fewer, files).problem


def test_text_shows_a_sample() -> None:
    task = replace(titanic_like_task(), data=TextData(tokenizer="char", context_length=8, alphabet="ab "))
    shown = preview(task, {"t.txt": ("ab " * 500).encode()})
    assert shown.summary == "t.txt: 1,500 characters, 500 words" and len(shown.text) == 400
