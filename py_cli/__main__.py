"""`python -m py_cli`: train a task on local data, from the command line, with tinygrad's CPU device."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

from py_cli.files import read_source, read_task
from py_cli.progress import ProgressBar
from py_shared.data.examples import DataError
from py_shared.models import build_model
from py_shared.safetensors_file import model_to_safetensors
from py_shared.training.pipeline import prepare_data
from py_shared.training.trainer import CancelToken, EpochMetrics, Trainer
from py_shared.typed_json import ValidationError


def final_line(task_id: str, history: list[EpochMetrics], seconds: float) -> str:
    """The one-line result: the last epoch's validation figures."""
    last = history[-1]
    parts = [f"task={task_id}", f"epochs={len(history)}", f"train_loss={last.train_loss:.4f}"]
    if last.val_loss is not None:
        parts += [f"val_loss={last.val_loss:.4f}", f"val_accuracy={last.val_accuracy:.4f}"]
        parts += [f"val_perplexity={last.val_perplexity:.3f}"]
    return "final: " + " ".join([*parts, f"seconds={seconds:.1f}"])


async def train(args: argparse.Namespace) -> int:
    """Read the task and data, train locally, print the final line, optionally save the model."""
    task = read_task(args.task)
    if args.epochs:
        task = replace(task, training=replace(task.training, epochs=args.epochs))
    started = time.perf_counter()
    data = prepare_data(task, read_source(task, args.data))
    print(data.summary, file=sys.stderr)
    bar = ProgressBar()
    model = build_model(task)
    trainer = Trainer(task, model, data.train, data.validation, on_progress=bar.progress, on_epoch=bar.epoch)
    history = await trainer.fit(CancelToken())
    print(final_line(task.id, history, time.perf_counter() - started))
    if args.save:
        args.save.write_bytes(model_to_safetensors(model, {"task": task.id}))
        print(f"model saved to {args.save}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m py_cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("train", help="train a task on local data")
    t.add_argument("--task", type=Path, required=True, help="task definition (JSON)")
    t.add_argument("--data", type=Path, required=True, help="a CSV file, an image folder, or a text file")
    t.add_argument("--local", action="store_true", help="train alone, whatever the task's scheme")
    t.add_argument("--epochs", type=int, default=0, help="override the task's number of epochs")
    t.add_argument("--save", type=Path, help="write the trained model to this .safetensors file")
    args = parser.parse_args(argv)
    if not args.local:
        parser.error("only local training is available yet: pass --local")
    try:
        return asyncio.run(train(args))
    except (DataError, ValidationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
