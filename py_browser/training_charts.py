"""Live charts of a run, drawn by uPlot on the page's main thread: loss and accuracy per epoch (a round ends with
an epoch), training and validation. Python keeps the series and hands uPlot the whole data after each epoch;
#train-charts[data-points] says how many epochs are drawn, for people's tools and tests."""

from __future__ import annotations

from typing import Any

import js
from pyodide.ffi import to_js
from pyscript import document, window

from py_shared.training.trainer import EpochMetrics

COLOURS = {"training": "#1d4e89", "validation": "#bf5700"}
HEIGHT = 180


def _js(value: object) -> Any:
    return to_js(value, dict_converter=js.Object.fromEntries)


class TrainingCharts:
    """The loss and accuracy charts of the current run."""

    def __init__(self) -> None:
        self.box = document.getElementById("train-charts")
        self.charts: dict[str, Any] = {}
        self.series: dict[str, list[float | None]] = {}

    def reset(self) -> None:
        """A new run: empty charts, shown once the first epoch ends."""
        for chart in self.charts.values():
            chart.destroy()
        self.charts, self.series = {}, {k: [] for k in ("epoch", "loss", "val_loss", "accuracy", "val_accuracy")}
        self.box.replaceChildren()
        self.box.hidden = True
        self.box.dataset.points = "0"

    def add(self, m: EpochMetrics) -> None:
        """Plot one more epoch."""
        values = {"epoch": float(m.epoch), "loss": m.train_loss, "accuracy": m.train_accuracy,
                  "val_loss": m.val_loss, "val_accuracy": m.val_accuracy}  # fmt: skip
        for key, value in values.items():
            self.series[key].append(value)  # None: no validation split, a gap in that line
        if not self.charts:
            self.box.hidden = False
            self.charts = {what: self._chart(what) for what in ("loss", "accuracy")}
        for what, chart in self.charts.items():
            chart.setData(_js([self.series["epoch"], self.series[what], self.series["val_" + what]]))
        self.box.dataset.points = str(len(self.series["epoch"]))

    def _chart(self, what: str) -> Any:
        holder = document.createElement("div")
        holder.className = "chart"
        self.box.append(holder)
        options = {
            "title": what.capitalize(),
            "width": max(200, int(self.box.clientWidth)),
            "height": HEIGHT,
            "scales": {"x": {"time": False}},
            "axes": [{"label": "epoch"}, {}],
            "series": [{"label": "epoch"}]
            + [{"label": f"{kind} {what}", "stroke": colour, "width": 2} for kind, colour in COLOURS.items()],
        }
        return window.uPlot.new(_js(options), _js([[], [], []]), holder)
