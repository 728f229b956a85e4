"""`python -m tasks.prepare [TASK...]`: fetch and prepare the predefined tasks' example data (run by make setup).

Each data set is rebuilt only when its pinned source or its preparation script changed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import shutil
import sys
from pathlib import Path

from provision.download import DownloadError, fetch
from tasks.prepare.output import write_manifest

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "tasks" / "examples"
CACHE = ROOT / ".cache" / "downloads"
TASKS = ["titanic", "mnist", "fashion_mnist", "simple_face", "emoji", "shakespeare"]
STAMP = ".prepared"


def _key(task: str) -> str:
    module = importlib.import_module(f"tasks.prepare.{task}")
    scripts = [Path(module.__file__ or ""), Path(__file__).with_name("output.py"), ROOT / "py_cli" / "image_zip.py"]
    digest = hashlib.sha256(module.ARTEFACT.sha256.encode())
    for script in scripts:
        digest.update(script.read_bytes())
    return digest.hexdigest()


def prepare(task: str) -> bool:
    """Prepare one task's example data unless it is up to date; True when it was (re)built."""
    module = importlib.import_module(f"tasks.prepare.{task}")
    dest, key = EXAMPLES / task, _key(task)
    if (dest / STAMP).exists() and (dest / STAMP).read_text() == key:
        return False
    source = fetch(module.ARTEFACT, CACHE)
    print(f"  preparing example data: {task}", flush=True)
    tmp = EXAMPLES / f".{task}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_manifest(tmp, module.prepare(source, tmp))
    (tmp / STAMP).write_text(key)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.prepare", description=__doc__)
    parser.add_argument("tasks", nargs="*", metavar="TASK", help="some of " + ", ".join(TASKS) + " (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    try:
        for task in args.tasks or TASKS:
            prepare(task)
    except DownloadError as e:
        print(f"setup failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
