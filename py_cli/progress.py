"""A progress bar on stderr: redrawn in place on a terminal, one line per report (ten an epoch) in a log."""

from __future__ import annotations

import sys
from typing import TextIO

from py_shared.federated.client import Status
from py_shared.training.trainer import EpochMetrics, Progress


class ProgressBar:
    """Shows training progress and one summary line per epoch."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 24) -> None:
        self.stream, self.width = stream, width
        self.tty = stream.isatty()
        self._last_status: tuple[str, int, int, str, str, str] | None = None

    def progress(self, p: Progress) -> None:
        filled = round(self.width * p.step / p.steps)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"epoch {p.epoch}/{p.epochs} [{bar}] {p.step}/{p.steps} loss {p.loss:.4f} acc {p.accuracy:.3f}"
        self.stream.write("\r" + line if self.tty else line + "\n")
        self.stream.flush()

    def epoch(self, m: EpochMetrics) -> None:
        val = f"val_loss {m.val_loss:.4f} val_acc {m.val_accuracy:.3f}" if m.val_loss is not None else "no validation"
        self.stream.write(("\n" if self.tty else "") + f"epoch {m.epoch}: {val} ({m.seconds:.1f} s)\n")
        self.stream.flush()

    def status(self, s: Status) -> None:
        shown = (s.state, s.round, s.participants, s.secure, s.detail, s.fingerprint)
        if shown == self._last_status:
            return  # the same news again (every update received by the server is announced)
        self._last_status = shown
        epsilon = f" epsilon {s.epsilon:.2f}" if s.epsilon is not None else ""
        detail = f": {s.detail}" if s.detail else ""
        secure = f" ({s.secure})" if s.secure else ""
        model = f", model {s.fingerprint}" if s.fingerprint else ""
        line = (
            f"[{s.state}] round {s.round}, {s.participants}/{s.min_participants} participants{secure}{epsilon}{model}"
            f"{detail}"
        )
        self.stream.write(("\n" if self.tty else "") + line + "\n")
        self.stream.flush()
