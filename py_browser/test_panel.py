"""The "Test and predict" panel: evaluate the model just trained on a labelled test set (accuracy, accuracy per
class, the confusion matrix, every prediction as a CSV download), predict every example of an unlabelled file
(a CSV download), or predict one example: an image, or a table row typed into a form. The test data is read
here, like the training data, and never leaves the device."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pyscript import document

from py_browser import files
from py_browser.page_events import PageEvents
from py_browser.table_rows import table_row
from py_shared.data.examples import DataError
from py_shared.data.prediction_input import file_order, for_prediction, is_labelled
from py_shared.data.tabular import NumericStats, to_csv
from py_shared.models.base import Model
from py_shared.task import ImageData, TabularData, TaskDefinition
from py_shared.training.device_data import DeviceExamples
from py_shared.training.evaluation import ClassReport, class_report, predict, true_classes
from py_shared.training.pipeline import prepare_data


def _element(element_id: str) -> Any:
    return document.getElementById(element_id)


@dataclass(frozen=True)
class TrainedModel:
    """A run's result: the task (with the epochs it ran), the model, and a tabular task's standardisation."""

    task: TaskDefinition
    model: Model
    stats: NumericStats | None


def class_names(task: TaskDefinition) -> tuple[str, ...]:
    """The task's classes, in output order."""
    spec = task.data
    if isinstance(spec, TabularData):
        return spec.label_values
    if isinstance(spec, ImageData):
        return spec.labels
    raise DataError("a text task's model is not evaluated class by class: it writes text, as below")


class TestPanel:
    """Wires #test to the latest TrainedModel."""

    def __init__(self) -> None:
        self.trained: TrainedModel | None = None
        self.predictions_csv = ""
        self.events = PageEvents()
        self.events.on("test-files", "change", lambda e: self._ready())
        self.events.on("test-run", "click", self.on_evaluate)
        self.events.on("test-download", "click", self.on_download)
        self.events.on("predict-image", "change", lambda e: self._ready())
        self.events.on("predict-run", "click", self.on_predict)

    def take(self, trained: TrainedModel) -> None:
        """A run finished: test and predict with its model."""
        self.trained = trained
        panel = _element("test")
        try:
            class_names(trained.task)
        except DataError as e:
            panel.hidden = False
            _element("test-result").textContent = str(e)
            _element("test-controls").hidden = True
            return
        panel.hidden = False
        _element("test-controls").hidden = False
        _element("test-result").textContent = ""
        _element("test-result").dataset.state = "idle"
        _element("test-classes").hidden = True
        _element("test-download").hidden = True
        image = isinstance(trained.task.data, ImageData)
        _element("predict-image").hidden = not image
        _element("predict-row").hidden = image
        if not image:
            self._row_form(trained.task)
        _element("predict-result").textContent = ""
        self._ready()

    def _ready(self) -> None:
        _element("test-run").disabled = self.trained is None or not _element("test-files").files.length
        image = self.trained is not None and isinstance(self.trained.task.data, ImageData)
        _element("predict-run").disabled = self.trained is None or (
            image and not _element("predict-image").files.length
        )

    def _row_form(self, task: TaskDefinition) -> None:
        spec = task.data
        assert isinstance(spec, TabularData)
        fields = []
        for column in spec.feature_columns:
            label = document.createElement("label")
            label.textContent = column
            field = document.createElement("input")
            field.type, field.name = "text", column
            field.dataset.column = column
            label.append(field)
            fields.append(label)
        _element("predict-row").replaceChildren(*fields)

    async def _examples(self, chosen: dict[str, bytes]) -> DeviceExamples:
        """Every chosen example, none held out, prepared as for training (the same standardisation)."""
        assert self.trained is not None
        task = self.trained.task
        every = replace(task, training=replace(task.training, validation_fraction=0.0))
        data = prepare_data(every, await files.to_source(every, chosen), self.trained.stats)
        assert isinstance(data.train, DeviceExamples)
        return data.train

    async def on_evaluate(self, event: Any) -> None:
        if self.trained is None:
            return
        result = _element("test-result")
        result.dataset.state, result.textContent = "running", "Reading the file…"
        result.removeAttribute("data-accuracy")
        result.removeAttribute("data-predictions")
        task, names = self.trained.task, class_names(self.trained.task)
        try:
            chosen = await files.chosen_files(_element("test-files").files)
            if is_labelled(task, chosen):
                data = await self._examples(chosen)
                inputs = None
            else:
                inputs = for_prediction(task, chosen)
                data = await self._examples(inputs.files)
        except (DataError, ValueError) as e:
            result.dataset.state, result.textContent = "error", f"Cannot test or predict: {e}"
            return
        seed = task.training.seed
        predicted = file_order(predict(self.trained.model, data), seed)
        _element("test-download").hidden = False
        if inputs is not None:
            _element("test-classes").hidden = True
            rows = [[*cells, names[p]] for cells, p in zip(inputs.rows, predicted, strict=True)]
            self.predictions_csv = to_csv([*inputs.header, "predicted"], rows)
            result.dataset.state, result.dataset.predictions = "done", str(len(rows))
            result.textContent = f"No labels in this file: predicted its {len(rows)} examples; download them below."
            return
        true = file_order(true_classes(data), seed)
        report = class_report(true, predicted, names)
        self._show(report)
        rows = [[str(i + 1), names[t], names[p]] for i, (t, p) in enumerate(zip(true, predicted, strict=True))]
        self.predictions_csv = to_csv(["example", "label", "predicted"], rows)
        result.dataset.state, result.dataset.accuracy = "done", f"{report.accuracy:.6g}"
        result.textContent = f"Accuracy {report.accuracy:.1%} on {len(true)} test examples."

    def _show(self, report: ClassReport) -> None:
        """Accuracy per class and the confusion matrix, one table: a row per true class."""
        table = _element("test-classes")
        rows = [table_row("th", ["class", "accuracy", *(f"called {n}" for n in report.names)])]
        for name, accuracy, counts in zip(report.names, report.per_class, report.confusion, strict=True):
            rows.append(table_row("td", [name, "-" if accuracy is None else f"{accuracy:.1%}", *map(str, counts)]))
        table.replaceChildren(*rows)
        table.hidden = False

    def on_download(self, event: Any) -> None:
        if not self.predictions_csv or self.trained is None:
            return
        files.save_as(f"{self.trained.task.id}-predictions.csv", self.predictions_csv, "text/csv")

    async def on_predict(self, event: Any) -> None:
        if self.trained is None:
            return
        task, out = self.trained.task, _element("predict-result")
        names = class_names(task)
        spec = task.data
        if isinstance(spec, ImageData):
            image = _element("predict-image").files.item(0)
            chosen = {image.name: await files.file_bytes(image)}
        else:
            assert isinstance(spec, TabularData)
            inputs = _element("predict-row").querySelectorAll("input")
            values = {str(inputs.item(i).dataset.column): str(inputs.item(i).value) for i in range(inputs.length)}
            row = [values[c] for c in spec.feature_columns]
            chosen = {"row.csv": to_csv(list(spec.feature_columns), [row]).encode()}
        try:
            data = await self._examples(for_prediction(task, chosen).files)
        except (DataError, ValueError) as e:
            out.dataset.state, out.textContent = "error", f"Cannot predict: {e}"
            return
        (predicted,) = predict(self.trained.model, data)
        out.dataset.state, out.dataset.predicted = "done", names[predicted]
        out.textContent = f"Predicted: {names[predicted]}"
