"""Generating text with a trained GPT task's model: a prompt, a temperature and a length, and the continuation
the model writes (py_shared/training/generation.py), on this device."""

from __future__ import annotations

from typing import Any

from pyscript import document

from py_browser import files
from py_browser.page_events import PageEvents
from py_browser.test_panel import TrainedModel
from py_shared.data.examples import DataError
from py_shared.data.text import tokenizer_for
from py_shared.task import TextData
from py_shared.training.generation import generate


def _element(element_id: str) -> Any:
    return document.getElementById(element_id)


class TextPanel:
    """Wires #generate to the latest model of a text task."""

    def __init__(self) -> None:
        self.trained: TrainedModel | None = None
        self.events = PageEvents()
        self.events.on("generate-run", "click", self.on_generate)

    def take(self, trained: TrainedModel) -> None:
        """A model to write with; the section shows only for text tasks."""
        text = isinstance(trained.task.data, TextData)
        self.trained = trained if text else None
        _element("generate").hidden = not text
        _element("generate-result").textContent = ""
        _element("generate-result").dataset.state = "idle"

    async def on_generate(self, event: Any) -> None:
        if self.trained is None:
            return
        spec, out = self.trained.task.data, _element("generate-result")
        assert isinstance(spec, TextData)
        try:
            temperature = float(_element("generate-temperature").value)
            length = int(_element("generate-length").value)
        except ValueError:
            out.dataset.state, out.textContent = "error", "The temperature and the length must be numbers."
            return
        out.dataset.state, out.textContent = "running", "Writing…"
        _element("generate-run").disabled = True
        try:
            bpe = await files.bpe_files() if spec.tokenizer == "gpt2-bpe" else None
            tokenizer = tokenizer_for(spec, bpe)
            prompt = str(_element("generate-prompt").value)
            text = generate(self.trained.model, tokenizer, spec.context_length, prompt, length, temperature)
        except (DataError, ValueError) as e:
            out.dataset.state, out.textContent = "error", f"Cannot generate: {e}"
            return
        finally:
            _element("generate-run").disabled = False
        out.dataset.state, out.textContent = "done", text
