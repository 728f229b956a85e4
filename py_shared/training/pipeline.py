"""From a participant's raw data (a py_shared.data.sources source) to device-resident training and validation
sets, the same on every platform."""

from __future__ import annotations

from dataclasses import dataclass

from py_shared.data.examples import DataError, split_indices
from py_shared.data.images import assemble_images
from py_shared.data.sources import CsvSource, DataSource, ImageSource, TextSource
from py_shared.data.tabular import NumericStats, prepare_tabular
from py_shared.data.text import split_stream, tokenize, tokenizer_for
from py_shared.task import ImageData, TabularData, TaskDefinition, TextData
from py_shared.training.device_data import DeviceExamples, DeviceTokens


@dataclass(frozen=True)
class PreparedData:
    """Device-resident splits and a plain-language summary of what was read."""

    train: DeviceExamples | DeviceTokens
    validation: DeviceExamples | DeviceTokens | None
    summary: str
    stats: NumericStats | None = None  # tabular: what the numeric columns were standardised with


def prepare_data(task: TaskDefinition, source: DataSource, stats: NumericStats | None = None) -> PreparedData:
    """Parse, check, split (seeded) and upload the data; raises DataError naming the file and the problem.
    A tabular task's numeric columns are standardised with `stats` when given (agreed by the federation)."""
    training, spec = task.training, task.data
    if isinstance(spec, TabularData) and isinstance(source, CsvSource):
        train, val, stats, rows = prepare_tabular(
            source.text, spec, source.name, training.validation_fraction, training.seed, stats
        )
        skipped = f", {rows.skipped_without_label} rows without a label skipped" if rows.skipped_without_label else ""
        summary = f"{source.name}: {len(train)} training and {len(val)} validation rows{skipped}"
        return PreparedData(DeviceExamples(train), DeviceExamples(val) if len(val) else None, summary, stats)
    if isinstance(spec, ImageData) and isinstance(source, ImageSource):
        examples = assemble_images(source.items, spec)
        train_idx, val_idx = split_indices(len(examples), training.validation_fraction, training.seed)
        train, val = examples.subset(train_idx), examples.subset(val_idx)
        summary = f"{len(examples)} images: {len(train)} for training, {len(val)} for validation"
        return PreparedData(DeviceExamples(train), DeviceExamples(val) if len(val) else None, summary)
    if isinstance(spec, TextData) and isinstance(source, TextSource):
        stream = tokenize(source.text, tokenizer_for(spec, source.bpe_files), source.name, spec.context_length)
        train_s, val_s = split_stream(stream, training.validation_fraction, spec.context_length)
        summary = f"{source.name}: {len(stream)} tokens, {len(val_s)} held out for validation"
        validation = DeviceTokens(val_s, spec.context_length) if len(val_s) else None
        return PreparedData(DeviceTokens(train_s, spec.context_length), validation, summary)
    expected = {"tabular": "a CSV file", "image": "image files", "text": "a text file"}[spec.kind]
    raise DataError(f"this task learns from {spec.kind} data: give it {expected}")
