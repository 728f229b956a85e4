"""Live charts of a run, drawn by uPlot on the page's main thread and kept to the page's width by www/app.js:
loss and accuracy per epoch, and, when training with the others, per round (the validation figures of the model
each round left). Python keeps the series and hands uPlot the whole data after each point;
#train-charts[data-points] and [data-rounds] say how many epochs and rounds are drawn, for tools and tests."""

from __future__ import annotations

from typing import Any

import js
from pyodide.ffi import to_js
from pyscript import document, window

from py_shared.training.trainer import EpochMetrics, RoundMetrics

COLOURS = {"training": "#1d4e89", "validation": "#bf5700"}
HEIGHT = 180
WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]  # epochs and rounds are whole: no tick at 1.5
KEYS = ("x", "loss", "accuracy", "val_loss", "val_accuracy")  # the order _add takes them in


def _js(value: object) -> Any:
    return to_js(value, dict_converter=js.Object.fromEntries)


class TrainingCharts:
    """The loss and accuracy charts of the current run, by epoch and by round."""

    def __init__(self) -> None:
        self.box = document.getElementById("train-charts")
        self.charts: dict[str, dict[str, Any]] = {}
        self.series: dict[str, dict[str, list[float | None]]] = {}

    def reset(self) -> None:
        """A new run: empty charts, shown once the first epoch or round ends."""
        for charts in self.charts.values():
            for chart in charts.values():
                chart.destroy()
        self.charts, self.series = {}, {axis: {k: [] for k in KEYS} for axis in ("epoch", "round")}
        self.box.replaceChildren()
        self.box.hidden = True
        self.box.dataset.points = self.box.dataset.rounds = "0"

    def add(self, m: EpochMetrics) -> None:
        """Plot one more epoch."""
        self._add("epoch", m.epoch, m.train_loss, m.train_accuracy, m.val_loss, m.val_accuracy)
        self.box.dataset.points = str(len(self.series["epoch"]["x"]))

    def add_round(self, m: RoundMetrics) -> None:
        """Plot one more round: the training figures before it, the validation of the model it left."""
        self._add("round", m.round, m.train_loss, m.train_accuracy, m.val_loss, m.val_accuracy)
        self.box.dataset.rounds = str(len(self.series["round"]["x"]))

    def _add(self, axis: str, x: int, *values: float | None) -> None:
        series = self.series[axis]
        for key, value in zip(KEYS, (float(x), *values), strict=True):
            series[key].append(value)  # None: no validation split, a gap in that line
        if axis not in self.charts:
            self.box.hidden = False
            self.charts[axis] = {what: self._chart(axis, what) for what in ("loss", "accuracy")}
        for what, chart in self.charts[axis].items():
            chart.setData(_js([series["x"], series[what], series["val_" + what]]))

    def _chart(self, axis: str, what: str) -> Any:
        holder = document.createElement("div")
        holder.className = "chart"
        holder.dataset.axis = axis
        # per epoch above per round, whichever came first
        self.box.insertBefore(holder, self.box.querySelector('.chart[data-axis="round"]') if axis == "epoch" else None)
        options = {
            "title": f"{what.capitalize()} per {axis}",
            "width": max(200, int(self.box.clientWidth)),
            "height": HEIGHT,
            "scales": {"x": {"time": False}},
            "axes": [{"label": axis, "incrs": WHOLE_STEPS}, {}],
            "series": [{"label": axis}]
            + [{"label": f"{kind} {what}", "stroke": colour, "width": 2} for kind, colour in COLOURS.items()],
        }
        return window.pydiscoChart(_js(options), _js([[], [], []]), holder)  # www/app.js: it follows the width
