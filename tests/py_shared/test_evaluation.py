"""Predictions, the confusion matrix and per-class accuracy, checked against numpy."""

from __future__ import annotations

import numpy as np
from tinygrad import Tensor

from py_shared.data.examples import Examples
from py_shared.models import build_model
from py_shared.training.device_data import DeviceExamples
from py_shared.training.evaluation import class_report, predict, true_classes
from tests.fixtures import titanic_like_task


def test_predictions_are_the_model_s_argmax_over_chunks_and_padding() -> None:
    task = titanic_like_task()
    model = build_model(task)
    rng = np.random.default_rng(3)
    features = rng.normal(size=(37, 9)).astype("<f4")
    labels = tuple(int(v) for v in rng.integers(0, 2, size=37))
    data = DeviceExamples(Examples(features.tobytes(), "float32", (9,), labels), chunk=8)  # 5 chunks, 3 padded
    expected = model(Tensor(features)).argmax(-1).tolist()
    assert predict(model, data) == expected
    assert true_classes(data) == list(labels)


def test_the_confusion_matrix_and_per_class_accuracy_match_numpy() -> None:
    rng = np.random.default_rng(7)
    true, predicted = rng.integers(0, 3, size=200), rng.integers(0, 3, size=200)
    predicted[:120] = true[:120]
    report = class_report(true.tolist(), predicted.tolist(), ("a", "b", "c"))
    reference = np.zeros((3, 3), dtype=int)
    np.add.at(reference, (true, predicted), 1)
    assert np.array_equal(np.array(report.confusion), reference)
    assert report.accuracy == float(np.mean(true == predicted))
    for c in range(3):
        assert report.per_class[c] == float(np.mean(predicted[true == c] == c))
    assert class_report([0, 0], [0, 1], ("a", "b")).per_class == (0.5, None)  # no b in this test set
