"""`python -m py_cli`: train a task on local data with tinygrad's CPU device, alone or with others through a
PyDisco server; split data among simulated clients; or simulate a whole federation."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import get_args

from py_cli.decentralized import train_decentralized
from py_cli.federated import fetch_task, train_federated
from py_cli.files import example_data, read_source, read_task
from py_cli.progress import ProgressBar
from py_cli.simulate import Attack, Engine, results_table, simulate
from py_cli.split import table, write_client
from py_shared.data.examples import DataError
from py_shared.data.splits import SplitSpec, split_source
from py_shared.federated.client import Refused
from py_shared.models import build_model
from py_shared.protocol.transport import ConnectionClosed
from py_shared.safetensors_file import model_to_safetensors
from py_shared.task import Aggregator
from py_shared.training.model_card import model_metadata
from py_shared.training.pipeline import PreparedData, prepare_data
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
    task = fetch_task(args.server, args.task) if args.server and not Path(args.task).is_file() else read_task(args.task)
    if args.epochs:
        task = replace(task, training=replace(task.training, epochs=args.epochs))
    started = time.perf_counter()
    source = read_source(task, args.data or example_data(task))
    bar = ProgressBar()
    prepared: list[PreparedData] = []

    def read(data: PreparedData) -> None:
        prepared.append(data)
        print(data.summary, file=sys.stderr)

    if args.server:
        together = train_decentralized if task.scheme == "decentralized" else train_federated
        trainer, history = await together(
            task,
            source,
            args.server,
            name=args.name,
            token=args.token,
            on_status=bar.status,
            on_data=read,
            on_progress=bar.progress,
            on_epoch=bar.epoch,
        )
    else:
        data = prepare_data(task, source)
        read(data)
        trainer = Trainer(
            task, build_model(task), data.train, data.validation, on_progress=bar.progress, on_epoch=bar.epoch
        )
        history = await trainer.fit(CancelToken())
    print(final_line(task.id, history, time.perf_counter() - started))
    if args.save:
        args.save.write_bytes(model_to_safetensors(trainer.model, model_metadata(task, prepared[0].stats)))
        print(f"model saved to {args.save}", file=sys.stderr)
    return 0


def split(args: argparse.Namespace) -> int:
    """Divide the data, write one file per client, print who got what."""
    task = read_task(args.task)
    spec = SplitSpec.parse(args.split)
    parts = split_source(task, read_source(task, args.data or example_data(task)), args.clients, spec, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for c, part in enumerate(parts):
        write_client(task, part, args.out, c)
    print(table(task, parts))
    print(f"{len(parts)} client files written to {args.out}", file=sys.stderr)
    return 0


async def simulate_command(args: argparse.Namespace) -> int:
    """Run a federated simulation and print the per-client table."""
    task = read_task(args.task)
    source = read_source(task, args.data or example_data(task))
    results = await simulate(
        task,
        source,
        args.clients,
        SplitSpec.parse(args.split),
        args.rounds,
        server=args.server,
        admin_token=args.admin_token,
        aggregator=args.aggregator,
        attack=Attack.parse(args.attack) if args.attack else None,
        baseline=not args.no_baseline,
        seed=args.seed,
        engine=args.engine,
        address=args.address,
        cpus=args.ray_cpus,
        save=args.save,
    )
    print(results_table(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m py_cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("train", help="train a task on local data")
    t.add_argument("--task", required=True, help="a task definition (JSON file) or a predefined task's id")
    t.add_argument(
        "--data",
        type=Path,
        help="a CSV file, a folder or zip of images, or a text file (default: the task's example data)",
    )
    t.add_argument("--local", action="store_true", help="train alone, whatever the task's scheme")
    t.add_argument(
        "--server", help="train together through this PyDisco server (http://host:port): federated, or with peers"
    )
    t.add_argument("--token", default="", help="the join token of a private task")
    t.add_argument("--name", default="", help="a name the server logs for this client")
    t.add_argument("--epochs", type=int, default=0, help="override the task's number of epochs")
    t.add_argument("--save", type=Path, help="write the trained model to this .safetensors file")
    s = commands.add_parser("split", help="divide a task's data among simulated clients, one file each")
    s.add_argument("--task", required=True, help="a task definition (JSON file) or a predefined task's id")
    s.add_argument("--data", type=Path, help="the data to divide (default: the task's example data)")
    s.add_argument("--clients", type=int, required=True)
    s.add_argument("--split", default="iid", help="iid, dirichlet:ALPHA (label skew) or quantity:ALPHA")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, required=True, help="folder for the clients' files")
    m = commands.add_parser("simulate", help="run N federated clients against a real server and compare")
    m.add_argument("--task", required=True, help="a task definition (JSON file) or a predefined task's id")
    m.add_argument("--data", type=Path, help="the data to divide (default: the task's example data)")
    m.add_argument("--clients", type=int, default=4)
    m.add_argument("--split", default="iid", help="iid, dirichlet:ALPHA (label skew) or quantity:ALPHA")
    m.add_argument("--rounds", type=int, default=10)
    m.add_argument("--aggregator", choices=get_args(Aggregator), help="override the task's aggregator")
    m.add_argument("--attack", help="K:scale:FACTOR or K:signflip: the first K clients are Byzantine")
    m.add_argument("--server", help="use this running server (default: start one for the run)")
    m.add_argument("--admin-token", default="", help="the server's admin token, to create the run's task")
    m.add_argument("--no-baseline", action="store_true", help="skip training each client alone for comparison")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument(
        "--engine",
        choices=get_args(Engine),
        default="local",
        help="local: every client in this process (default); ray: every client in a Ray actor of its own",
    )
    m.add_argument("--address", help="with --engine ray: an existing Ray cluster (default: start a local instance)")
    m.add_argument("--ray-cpus", type=int, help="with --engine ray: the local Ray instance's CPUs (default: all)")
    m.add_argument("--save", type=Path, help="write the final global model to this .safetensors file")
    args = parser.parse_args(argv)
    if args.command == "train" and args.local and args.server:
        parser.error("--local and --server exclude each other")
    if args.command == "simulate" and args.engine != "ray" and (args.address or args.ray_cpus):
        parser.error("--address and --ray-cpus go with --engine ray")
    if args.command == "simulate" and args.address and args.ray_cpus:
        parser.error("--ray-cpus sizes a local Ray instance; a cluster at --address has its own")
    try:
        if args.command == "split":
            return split(args)
        if args.command == "simulate":
            return asyncio.run(simulate_command(args))
        return asyncio.run(train(args))
    except (DataError, ValidationError, ValueError, Refused, ConnectionClosed, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
