"""The "Train on this device" panel: pick a task (offered by the server, or a file) and data (the user's files or
the task's example data), train with progress, cancel, download the model."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from html import escape
from typing import Any

from pyscript import document

from py_browser import federation_view, files, rtc_link, task_list, websocket_transport
from py_browser.data_connection import DataConnection
from py_browser.federation_view import EventLog, awaited, show_status
from py_browser.model_library import ModelLibrary
from py_browser.page_events import PageEvents
from py_browser.table_rows import table_row
from py_browser.test_panel import TestPanel, TrainedModel
from py_browser.text_panel import TextPanel
from py_browser.training_charts import TrainingCharts
from py_browser.webcrypto import WebCrypto
from py_shared.data.examples import DataError
from py_shared.data.tabular import NumericStats
from py_shared.decentralized.peer import DecentralizedPeer
from py_shared.federated.client import FederatedClient, Refused, Status
from py_shared.federated.join import join_with_data
from py_shared.federated.secure_client import SecureFederatedClient
from py_shared.models import build_model
from py_shared.protocol.transport import ConnectionClosed
from py_shared.safetensors_file import load_safetensors, model_to_safetensors
from py_shared.task import TaskDefinition, task_from_json
from py_shared.training.model_card import model_metadata
from py_shared.training.pipeline import prepare_data
from py_shared.training.trainer import CancelToken, EpochMetrics, Progress, Trainer, TrainingCancelled
from py_shared.typed_json import ValidationError


def _element(element_id: str) -> Any:
    return document.getElementById(element_id)


COLLABORATION_HINTS = {
    "federated": "Federated: only model updates leave this device, never your data. Unticked, you train alone.",
    "decentralized": "Decentralized: after each round your model goes straight to the other peers (WebRTC) and "
    "every peer averages the same models; the server only introduces the peers and never sees a model. Your "
    "data never leaves this device. Unticked, you train alone.",
}
MODEL_NAMES = {"mlp": "a multilayer perceptron", "cnn": "a convolutional network", "gpt": "a small GPT"}
MAX_EPOCHS = 1000  # the epochs field's own max
# what a run reads from: changing any of them mid-run would mix two tasks' data, results and weights
RUN_INPUTS = ("task-select", "task-file", "data-files", "use-example", "epochs", "collaborate", "join-token")


def _duration(seconds: float) -> str:
    """A time left, as a person says it."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


def describe(task: TaskDefinition) -> str:
    """One line saying what the task trains, for the person choosing it."""
    t = task.training
    return (
        f"{task.title}: {MODEL_NAMES[task.model.kind]} on {task.data_type} data, {t.epochs} epochs, "
        f"batch {t.batch_size}, {t.optimizer} at {t.learning_rate:g}."
    )


class LocalTrainingPanel:
    """Wires the panel's elements to a Trainer running in this worker."""

    def __init__(self) -> None:
        self.task: TaskDefinition | None = None
        self.offered: dict[str, Any] = {}  # the server's task list, by id
        self.in_menu: set[str] = set()  # every task ever offered stays in the menu
        self.cancel_token: CancelToken | None = None
        self.client: FederatedClient | DecentralizedPeer | None = None  # whom this run trains with, if anyone
        self.model_bytes: bytes | None = None
        self.model_task = ""  # the id of the task the downloadable model was trained for
        self.restart_alone = False  # the person chose to stop waiting for others and train alone
        self.charts = TrainingCharts()
        self.event_log = EventLog()
        self.tester = TestPanel()
        self.writer = TextPanel()
        self.stepping_since: float | None = None  # when this run's first step ended (for the time left)
        self.stepping_done = 0.0  # the share of the run done then
        self.runs = 0
        self.start_from: tuple[str, bytes] | None = None  # a kept model the next run of its task trains on from
        self.library: ModelLibrary | None = None
        self.data = DataConnection(self._ready)
        self.events = PageEvents()
        for element_id, event, handler in [
            ("task-select", "change", self.on_task_select),
            ("task-file", "change", self.on_task_file),
            ("train-start", "click", self.on_start),
            ("train-cancel", "click", self.on_cancel),
            ("train-alone", "click", self.on_train_alone),
            ("train-download", "click", self.on_download),
        ]:
            self.events.on(element_id, event, handler)
        _element("train").hidden = False

    def message(self, text: str) -> None:
        _element("train-message").textContent = text

    def result(self, state: str, text: str, **data: float) -> None:
        """The outcome line: data-state is idle, running, done, error or cancelled, data-run counts the runs, and
        data-val-accuracy, data-val-loss and data-seconds hold the figures of a finished run."""
        element = _element("train-result")
        element.dataset.state = state
        for key, value in data.items():
            element.setAttribute("data-" + key.replace("_", "-"), f"{value:.6g}")
        element.textContent = text

    def _ready(self) -> None:
        running = self.cancel_token is not None
        _element("train-start").disabled = self.task is None or not self.data.ready or running
        _element("use-example").disabled = self.data.example_info is None or running

    def offer(self, listing: dict[str, Any]) -> None:
        """Take the server's task list: new tasks join the menu (the chosen one stays chosen)."""
        self.offered = listing
        if fresh := [task_id for task_id in listing if task_id not in self.in_menu]:
            options = (f'<option value="{escape(i)}">{escape(listing[i]["title"])}</option>' for i in fresh)
            _element("task-select").insertAdjacentHTML("beforeend", "".join(options))  # one round trip to the page
            self.in_menu.update(fresh)

    async def choose(self, task_id: str) -> None:
        """Open a task as if picked from the menu (from a link); not while a run holds the inputs."""
        if self.cancel_token is not None:
            return
        if task_id not in self.offered:
            _element("task-select").value = ""
            self._set_task(None, f"This server has no task “{task_id}”: the link may be old. Pick one above.")
            return
        _element("task-select").value = task_id
        await self.on_task_select(None)

    def _set_task(self, task: TaskDefinition | None, summary: str) -> None:
        self.task = task
        _element("task-summary").textContent = summary
        _element("task-summary").dataset.state = "error" if task is None and summary else ""
        details = _element("task-details")
        details.hidden = task is None or not task.description
        _element("task-description").textContent = task.description if task else ""
        if task is not None:
            _element("epochs").value = str(task.training.epochs)
        offered = self.offered.get(task.id) if task is not None else None
        # a task loaded from a file is not on the server: only the server's tasks can be joined
        scheme = task.scheme if offered is not None and task is not None else "local"
        _element("collaboration").hidden = scheme == "local"
        _element("collaboration-hint").textContent = COLLABORATION_HINTS.get(scheme, "")
        _element("join-token").hidden = not (offered and offered.get("private"))
        task_list.share(task.id if offered is not None and task is not None else None)
        self.data.for_task(task, offered.get("example_data") if offered is not None else None)

    async def on_task_select(self, event: Any) -> None:
        task_id = _element("task-select").value
        if not task_id:
            self._set_task(None, "")
            return
        try:
            task = task_from_json(json.loads(await files.fetch_bytes(f"/api/tasks/{task_id}")))
            self._set_task(task, describe(task))
        except (ValueError, DataError) as e:
            self._set_task(None, f"This task cannot be used: {e}")

    async def on_task_file(self, event: Any) -> None:
        chosen = _element("task-file").files
        if not chosen.length:
            return
        _element("task-select").value = ""
        try:
            task = task_from_json(json.loads(await files.file_text(chosen.item(0))))
            self._set_task(task, describe(task))
        except (ValueError, DataError) as e:  # JSONDecodeError and ValidationError are ValueErrors
            self._set_task(None, f"This task file cannot be used: {e}")

    def on_status(self, status: Status) -> None:
        """Show the collaboration's state; while too few participants are here, offer to train alone."""
        show_status(status)
        self.event_log.add(status)
        _element("train-alone").hidden = not awaited(status)

    async def on_train_alone(self, event: Any) -> None:
        self.restart_alone = True
        _element("collaborate").checked = False
        await self.on_cancel(event)

    async def on_cancel(self, event: Any) -> None:
        if self.cancel_token is not None:
            self.cancel_token.cancel()
            self.message("Cancelling after the current step…")
        if self.client is not None and self.client.status.state != "training":
            await self.client.cancel()  # it is waiting (for others, for the round): stop waiting

    def _chosen_epochs(self, task: TaskDefinition) -> TaskDefinition:
        """The task with the epochs typed in; raises ValueError unless they are a whole number in range."""
        text = str(_element("epochs").value).strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_EPOCHS:
            raise ValueError(f"epochs must be a whole number from 1 to {MAX_EPOCHS}, not {text or 'nothing'}")
        return replace(task, training=replace(task.training, epochs=int(text)))

    def _lock(self, locked: bool) -> None:
        """Hold the run's inputs while it trains (and the buttons that start and stop it)."""
        for element_id in RUN_INPUTS:
            _element(element_id).disabled = locked
        _element("train-start").disabled = locked
        _element("train-cancel").disabled = not locked

    async def on_start(self, event: Any) -> None:
        if self.task is None or self.cancel_token is not None:
            return
        self.message("")
        try:
            task = self._chosen_epochs(self.task)
        except ValueError as e:
            self.result("error", f"Cannot train: {e}.")
            return
        self.cancel_token = CancelToken()
        self._lock(True)
        _element("train-download").hidden = True
        _element("train-epochs").querySelector("tbody").replaceChildren()
        self.charts.reset()
        self.event_log.reset()
        self.stepping_since = None
        self.runs += 1
        self.result("running", "Training…")  # before the new run's number: who sees that number sees it running
        _element("train-result").setAttribute("data-run", str(self.runs))
        try:
            await self._train(task, self.cancel_token)
        except TrainingCancelled:
            self.message("")
            alone = " Training alone instead…" if self.restart_alone else ""
            self.result("cancelled", f"Training was cancelled.{alone}")
        except (DataError, ValidationError, ValueError, Refused, ConnectionClosed) as e:
            self.message("")  # what it was doing is over: the error says why
            self.result("error", f"Cannot train: {e}")
        finally:
            self.cancel_token, self.client = None, None
            _element("train-alone").hidden = True
            self._lock(False)
            self._ready()
        if self.restart_alone:
            self.restart_alone = False
            federation_view.hide()
            await self.on_start(event)

    async def _train(self, task: TaskDefinition, cancel: CancelToken) -> None:
        started = time.perf_counter()
        self.message("Reading your data…")
        source = await files.to_source(task, self.data.files(), self.message)
        model = build_model(task)
        together = not _element("collaboration").hidden and _element("collaborate").checked
        client: FederatedClient | DecentralizedPeer | None = None
        token = _element("join-token").value
        if self.start_from is not None and self.start_from[0] == task.id:
            load_safetensors(model, self.start_from[1])
            self.start_from = None
        elif not together and (uploaded := await files.initial_weights(task.id, token)) is not None:
            load_safetensors(model, uploaded)  # together, the server sends them
        if together and task.scheme == "decentralized":
            data = prepare_data(task, source)
            url = websocket_transport.task_url(task.id, "decentralized")
            connect = websocket_transport.connector(url)
            client = self.client = DecentralizedPeer(task, model, data.train.count, connect, rtc_link.open_link,
                                                     token=token, on_status=self.on_status,
                                                     crypto=WebCrypto())  # fmt: skip
            await client.start()
        elif together:
            connect = websocket_transport.connector(websocket_transport.task_url(task.id, "federated"))
            options: dict[str, Any] = {"token": token, "on_status": self.on_status}

            def make_client(samples: int) -> FederatedClient:
                nonlocal client
                made: FederatedClient
                if task.secure_aggregation:
                    made = SecureFederatedClient(task, model, samples, connect, crypto=WebCrypto(), **options)
                else:
                    made = FederatedClient(task, model, samples, connect, **options)
                client = self.client = made  # cancellable while it waits for the others
                return made

            client, data = await join_with_data(task, source, make_client)
        else:
            data = prepare_data(task, source)
        self.message(f"{data.summary}. Compiling the model for this GPU (the first step takes longest)…")
        trainer = Trainer(
            task,
            model,
            data.train,
            data.validation,
            on_progress=self.on_progress,
            on_epoch=self.on_epoch,
            round_end=client.round_end if client else None,
            on_round=self.charts.add_round if client else None,
        )
        if client is None:
            federation_view.hide()
            history = await trainer.fit(cancel)
        else:
            client.on_new_global = trainer.reset_anchor
            try:
                history = await trainer.fit(cancel)
            finally:
                await client.leave()
        last = history[-1]
        self.model_bytes = model_to_safetensors(model, model_metadata(task, data.stats))
        self.model_task = task.id
        self._use(TrainedModel(task, model, data.stats))
        _element("train-download").hidden = False
        seconds = time.perf_counter() - started
        if last.val_accuracy is not None and last.val_loss is not None:
            metrics = f"validation accuracy {last.val_accuracy:.1%}, loss {last.val_loss:.4f}"
            self.result("done", f"Done: {metrics} ({seconds:.0f} s).", val_accuracy=last.val_accuracy,
                        val_loss=last.val_loss, seconds=seconds)  # fmt: skip
        else:
            metrics = f"training loss {last.train_loss:.4f}"
            self.result("done", f"Done: {metrics} ({seconds:.0f} s).", seconds=seconds)
        self.message("")
        if self.library is not None:
            await self.library.keep(task, metrics, self.model_bytes)

    def use_saved(self, task: TaskDefinition, model_file: bytes, stats: NumericStats | None) -> None:
        """A kept model: test and predict with it now; the next run of its task trains on from it."""
        if self.cancel_token is not None:
            return  # a run holds the inputs
        _element("task-select").value = task.id if task.id in self.offered else ""
        self._set_task(task, describe(task) + " Training goes on from your kept model.")
        self.start_from = (task.id, model_file)
        self.model_bytes, self.model_task = model_file, task.id
        _element("train-download").hidden = False
        model = build_model(task)
        load_safetensors(model, model_file)
        self._use(TrainedModel(task, model, stats))

    def _use(self, trained: TrainedModel) -> None:
        """Test, predict and write with `trained`."""
        self.tester.take(trained)
        self.writer.take(trained)

    def on_progress(self, p: Progress) -> None:
        bar = _element("train-progress")
        done = ((p.epoch - 1) * p.steps + p.step) / (p.epochs * p.steps)
        bar.value = done
        now = time.perf_counter()
        if self.stepping_since is None:  # the first step compiles the kernels: time the rest from here
            self.stepping_since, self.stepping_done = now, done
        left = ""
        if (measured := done - self.stepping_done) > 0.01 and done < 1:
            left = f" · about {_duration((now - self.stepping_since) * (1 - done) / measured)} left"
        self.message(
            f"Epoch {p.epoch}/{p.epochs}, step {p.step}/{p.steps}: loss {p.loss:.4f}, accuracy {p.accuracy:.1%}{left}"
        )

    def on_epoch(self, m: EpochMetrics) -> None:
        self.charts.add(m)
        table = _element("train-epochs")
        table.hidden = False
        cells = [str(m.epoch), f"{m.train_loss:.4f}", f"{m.train_accuracy:.1%}"]
        cells += [f"{m.val_loss:.4f}", f"{m.val_accuracy:.1%}"] if m.val_loss is not None else ["-", "-"]
        table.querySelector("tbody").append(table_row("td", [*cells, f"{m.seconds:.1f} s"]))

    def on_download(self, event: Any) -> None:
        if self.model_bytes is None:
            return
        files.save_as(f"{self.model_task}.safetensors", self.model_bytes)
