"""Tabular data: a CSV with a header, encoded as the task says (one-hot categories, standardised numbers).

Statistics for filling missing numbers and for standardising come from the training split only, so that
nothing of the validation rows leaks into training.
"""

from __future__ import annotations

import array
import csv
import io
import math
from dataclasses import dataclass

from py_shared.data.examples import DataError, Examples, split_indices
from py_shared.task import TabularData


@dataclass(frozen=True)
class TableRows:
    """Rows kept from a CSV: each feature as written (None when missing), and the label's class index."""

    features: list[list[str | None]]
    labels: list[int]
    skipped_without_label: int


@dataclass(frozen=True)
class NumericStats:
    """Per numeric column: the mean fills missing values; (x - mean) / std standardises when asked."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class CsvTable:
    """A parsed CSV: its header, the rows that have a label (cells as written) and their class indices."""

    header: list[str]
    rows: list[list[str]]
    labels: list[int]
    skipped_without_label: int


def csv_rows(text: str) -> list[list[str]]:
    """The rows of CSV text, without a byte-order mark or blank lines."""
    return [r for r in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if any(cell.strip() for cell in r)]


def check_width(row: list[str], header: list[str], name: str, line: int) -> None:
    """DataError unless the row has as many fields as the header."""
    if len(row) != len(header):
        raise DataError(f"{name}, line {line}: {len(row)} fields where the header has {len(header)}")


def class_order(value: str) -> tuple[int, float, str]:
    """A sort key for class names: numbers first, by value, then words."""
    return (0, float(value), "") if is_number(value) else (1, 0.0, value)


def parse_csv(text: str, spec: TabularData, name: str) -> CsvTable:
    """Parse CSV text, checking columns and values; rows without a label are skipped and counted."""
    if "\x00" in text:
        raise DataError(f"{name}: this is not a CSV text file (it contains binary data)")
    rows = csv_rows(text)
    if not rows:
        raise DataError(f"{name}: the file is empty")
    header = [h.strip() for h in rows[0]]
    wanted = [*spec.feature_columns, spec.label_column]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DataError(f"{name}: missing column(s) {', '.join(missing)}; the header has: {', '.join(header)}")
    if len(rows) < 2:
        raise DataError(f"{name}: the file has a header but no data rows")
    at = {c: header.index(c) for c in wanted}
    missing_tokens = set(spec.missing_tokens)
    label_index = {v: i for i, v in enumerate(spec.label_values)}
    kept, labels, skipped = [], [], 0
    for line, row in enumerate(rows[1:], start=2):
        check_width(row, header, name, line)
        label = row[at[spec.label_column]].strip()
        if label in missing_tokens:
            skipped += 1
            continue
        labels.append(_label(label, label_index, spec, f"{name}, line {line}"))
        for column in spec.feature_columns:
            value = row[at[column]].strip()
            if value not in missing_tokens:
                _check_value(value, column, spec, f"{name}, line {line}")
        kept.append(row)
    if not labels:
        raise DataError(f"{name}: no row has a value in the label column {spec.label_column!r}")
    return CsvTable(header, kept, labels, skipped)


def read_csv(text: str, spec: TabularData, name: str) -> TableRows:
    """The feature cells (None when missing) and labels of a CSV's labelled rows."""
    table = parse_csv(text, spec, name)
    positions = [table.header.index(c) for c in spec.feature_columns]
    missing_tokens = set(spec.missing_tokens)
    features: list[list[str | None]] = [
        [None if (v := row[p].strip()) in missing_tokens else v for p in positions] for row in table.rows
    ]
    return TableRows(features, table.labels, table.skipped_without_label)


def to_csv(header: list[str], rows: list[list[str]]) -> str:
    """CSV text of a header and rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _label(value: str, index: dict[str, int], spec: TabularData, where: str) -> int:
    if value in index:
        return index[value]
    try:  # "1.0" for "1"
        number = float(value)
        for known, i in index.items():
            if is_number(known) and float(known) == number:
                return i
    except ValueError:
        pass
    raise DataError(f"{where}: label {value!r} is not one of {', '.join(spec.label_values)}")


def is_number(text: str) -> bool:
    """Whether a cell reads as a finite number."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _check_value(value: str, column: str, spec: TabularData, where: str) -> None:
    vocabulary = spec.categorical.get(column)
    if vocabulary is not None:
        if value not in vocabulary:
            raise DataError(f"{where}, column {column}: {value!r} is not one of {', '.join(vocabulary)}")
    elif not is_number(value):
        raise DataError(f"{where}, column {column}: {value!r} is not a number")


def numeric_stats(rows: TableRows, indices: list[int], spec: TabularData) -> NumericStats:
    """Mean and standard deviation of each numeric column over the rows at `indices`, ignoring missing cells."""
    positions = [spec.feature_columns.index(c) for c in spec.numeric_columns]
    means, stds = [], []
    for p in positions:
        values = [float(v) for i in indices if (v := rows.features[i][p]) is not None]
        mean = sum(values) / len(values) if values else 0.0
        var = sum((v - mean) ** 2 for v in values) / len(values) if values else 0.0
        means.append(mean)
        stds.append(math.sqrt(var) if var > 0 else 1.0)
    return NumericStats(tuple(means), tuple(stds))


def encode(rows: TableRows, indices: list[int], spec: TabularData, stats: NumericStats) -> Examples:
    """The rows at `indices` as float32 vectors of spec.input_size: numbers filled and scaled, categories one-hot."""
    numeric = {c: i for i, c in enumerate(spec.numeric_columns)}
    values = array.array("f")
    for i in indices:
        for column, cell in zip(spec.feature_columns, rows.features[i], strict=True):
            if column in spec.categorical:
                values.extend(1.0 if cell == v else 0.0 for v in spec.categorical[column])
                continue
            k = numeric[column]
            x = stats.mean[k] if cell is None else float(cell)
            values.append((x - stats.mean[k]) / stats.std[k] if spec.normalize else x)
    return Examples(values.tobytes(), "float32", (spec.input_size,), tuple(rows.labels[i] for i in indices))


def prepare_tabular(
    text: str, spec: TabularData, name: str, validation_fraction: float, seed: int, stats: NumericStats | None = None
) -> tuple[Examples, Examples, NumericStats, TableRows]:
    """CSV text -> (train, validation) examples, with `stats` (agreed by the federation) or else statistics from
    the training split only."""
    rows = read_csv(text, spec, name)
    train_idx, val_idx = split_indices(len(rows.labels), validation_fraction, seed)
    stats = stats or numeric_stats(rows, train_idx, spec)
    return encode(rows, train_idx, spec, stats), encode(rows, val_idx, spec, stats), stats, rows
