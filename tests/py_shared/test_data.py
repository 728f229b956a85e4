"""Data pipelines: CSV encoding against a hand-computed fixture, images, tokenizers, and clear errors."""

from __future__ import annotations

import re
import struct

import pytest

from py_shared.data.examples import DataError, split_indices
from py_shared.data.images import assemble_images, parse_labels_csv, rgba_to_channels
from py_shared.data.tabular import prepare_tabular, read_csv
from py_shared.data.text import BPETokenizer, CharTokenizer, split_stream, tokenize
from py_shared.task import ImageData, TabularData
from tests.conftest import ROOT

SPEC = TabularData(
    feature_columns=("Age", "Sex", "Fare"),
    label_column="Survived",
    label_values=("0", "1"),
    categorical={"Sex": ("male", "female")},
)
CSV = """Name,Age,Sex,Fare,Survived
a,20,male,10,0
b,,female,30,1
c,40,female,20,1.0
d,30,male,NA,
"""


def floats(data: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def test_csv_encoding_matches_hand_computed_values() -> None:
    # no validation split: statistics over rows a, b, c (d has no label and is skipped)
    train, val, stats, rows = prepare_tabular(CSV, SPEC, "t.csv", 0.0, seed=0)
    assert rows.skipped_without_label == 1 and len(val) == 0
    # Age: values 20, 40 (b missing) -> mean 30, std 10; Fare: 10, 30, 20 -> mean 20, std sqrt(200/3)
    assert stats.mean == pytest.approx((30.0, 20.0)) and stats.std == pytest.approx((10.0, (200 / 3) ** 0.5))
    s = (200 / 3) ** 0.5
    expected = [
        (0, [-1.0, 1.0, 0.0, -10 / s]),  # a: age 20, male, fare 10
        (1, [0.0, 0.0, 1.0, 10 / s]),  # b: age missing -> the mean -> 0, female, fare 30
        (1, [1.0, 0.0, 1.0, 0.0]),  # c: age 40, female, fare 20; label "1.0" read as class "1"
    ]
    values = floats(train.features)
    got = sorted((label, values[4 * k : 4 * k + 4]) for k, label in enumerate(train.labels))
    assert [label for label, _ in got] == [label for label, _ in expected]
    for (_, row), (_, want) in zip(got, sorted(expected), strict=True):
        assert row == pytest.approx(want, abs=1e-6)


def test_statistics_come_from_the_training_split_only() -> None:
    text = "Age,Sex,Fare,Survived\n" + "".join(f"{a},male,1,{a % 2}\n" for a in range(10))  # Age = row number
    train, val, stats, _ = prepare_tabular(text, SPEC, "t.csv", 0.3, seed=1)
    train_rows, _ = split_indices(10, 0.3, seed=1)
    assert len(train) == 7 and len(val) == 3
    assert stats.mean[0] == pytest.approx(sum(train_rows) / 7)
    assert sum(floats(train.features)[0::4]) == pytest.approx(0.0, abs=1e-5)  # standardised on its own mean


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "t.csv: the file is empty"),
        ("Age,Sex,Survived\n1,male,0\n", "t.csv: missing column(s) Fare; the header has: Age, Sex, Survived"),
        ("Age,Sex,Fare,Survived\n", "t.csv: the file has a header but no data rows"),
        ("Age,Sex,Fare,Survived\nold,male,1,0\n", "t.csv, line 2, column Age: 'old' is not a number"),
        (
            "Age,Sex,Fare,Survived\n1,robot,1,0\n",
            "t.csv, line 2, column Sex: 'robot' is not one of male, female",
        ),
        ("Age,Sex,Fare,Survived\n1,male,1,2\n", "t.csv, line 2: label '2' is not one of 0, 1"),
        ("Age,Sex,Fare,Survived\n1,male,1\n", "t.csv, line 2: 3 fields where the header has 4"),
        ("\x89PNG\x00\x00", "t.csv: this is not a CSV text file"),
        ("Age,Sex,Fare,Survived\n1,male,1,\n", "t.csv: no row has a value in the label column 'Survived'"),
    ],
)
def test_bad_csv_is_named_with_its_problem(text: str, message: str) -> None:
    with pytest.raises(DataError) as e:
        read_csv(text, SPEC, "t.csv")
    assert str(e.value).startswith(message)


def test_split_is_seeded_and_loses_nothing() -> None:
    train, val = split_indices(100, 0.2, seed=3)
    assert sorted(train + val) == list(range(100)) and len(val) == 20
    assert split_indices(100, 0.2, seed=3) == (train, val) != split_indices(100, 0.2, seed=4)


def test_images_keep_the_task_channels_and_check_sizes_and_labels() -> None:
    rgba = bytes([10, 20, 30, 255, 40, 50, 60, 255])
    assert rgba_to_channels(rgba, 1) == bytes([10, 40])
    assert rgba_to_channels(rgba, 3) == bytes([10, 20, 30, 40, 50, 60])
    spec = ImageData(width=2, height=1, channels=3, labels=("cat", "dog"))
    examples = assemble_images([("a.png", "dog", rgba), ("b.png", "cat", rgba)], spec)
    assert examples.labels == (1, 0) and examples.shape == (1, 2, 3) and examples.dtype == "uint8"
    with pytest.raises(DataError, match=re.escape("b.png: label 'cow' is not one of cat, dog")):
        assemble_images([("b.png", "cow", rgba)], spec)
    with pytest.raises(DataError, match=re.escape("c.png: decoded to 4 bytes, expected 2x1 RGBA")):
        assemble_images([("c.png", "cat", rgba[:4])], spec)


def test_labels_file() -> None:
    assert parse_labels_csv("filename,label\na.png,cat\nb.png, dog\n") == {"a.png": "cat", "b.png": "dog"}
    with pytest.raises(DataError, match="must name a 'filename' and a 'label' column"):
        parse_labels_csv("x,y\na,b\n")


def gpt2() -> BPETokenizer:
    folder = ROOT / "www" / "vendor" / "gpt2-tokenizer"
    return BPETokenizer((folder / "encoder.json").read_text(), (folder / "vocab.bpe").read_text())


def test_bpe_ids_match_gpt2() -> None:
    tokenizer = gpt2()
    assert tokenizer.vocab_size == 50257
    assert tokenizer.encode("Hello world") == [15496, 995]
    # well-known GPT-2 ids: contractions, numbers, punctuation and a multi-byte character
    assert tokenizer.encode(" don't") == [836, 470]
    text = "To be, or not to be: that is the question. 1234 café ☃"
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_char_tokenizer_and_windows() -> None:
    chars = CharTokenizer("ab ")
    assert chars.encode("ab a?") == [0, 1, 2, 0, 3] and chars.vocab_size == 4
    assert chars.decode([0, 1, 3]) == "ab\ufffd"
    stream = tokenize("ab " * 20, chars, "t.txt", context_length=4)
    train, val = split_stream(stream, 0.25, context_length=4)
    assert len(train) + len(val) == 60 and len(val) == 15
    with pytest.raises(DataError, match=re.escape("t.txt: 3 tokens is too short for windows of 4 tokens")):
        tokenize("abc", chars, "t.txt", context_length=4)
