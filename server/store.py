"""What survives a restart: created tasks (with their join tokens and the initial weights their creator uploaded),
each task's global model and round, and the feature statistics a secure tabular task's participants agreed on.

SQLite under --data-dir holds the rows; each global model is a safetensors file beside it, written to a temporary
name and renamed, so a crash mid-write leaves the previous model intact.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from py_shared.task import TaskDefinition, task_from_json, task_to_json
from py_shared.typed_json import JSON

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, definition TEXT NOT NULL, join_token TEXT NOT NULL,
                                  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS models (task_id TEXT PRIMARY KEY, round INTEGER NOT NULL, file TEXT NOT NULL,
                                   updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS statistics (task_id TEXT PRIMARY KEY, statistics TEXT NOT NULL);
"""


@dataclass(frozen=True)
class StoredTask:
    """A task created through the API, and the token participants need ("" for a public task)."""

    task: TaskDefinition
    join_token: str


class Store:
    """The server's persistent state in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.models_dir = data_dir / "models"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(data_dir / "pydisco.sqlite3", isolation_level=None)
        self.db.executescript(SCHEMA)

    def created_tasks(self) -> list[StoredTask]:
        """Every task created through the API, oldest first."""
        rows = self.db.execute("SELECT definition, join_token FROM tasks ORDER BY created").fetchall()
        return [StoredTask(task_from_json(json.loads(d)), token) for d, token in rows]

    def add_task(self, task: TaskDefinition, join_token: str) -> None:
        """Keep a newly created task (its id must be new)."""
        self.db.execute(
            "INSERT INTO tasks VALUES (?, ?, ?, ?)", (task.id, json.dumps(task_to_json(task)), join_token, time.time())
        )

    def load_model(self, task_id: str) -> tuple[int, bytes] | None:
        """The stored round and safetensors bytes of the task's global model, if there is one."""
        row = self.db.execute("SELECT round, file FROM models WHERE task_id = ?", (task_id,)).fetchone()
        if row is None or not (self.models_dir / row[1]).is_file():
            return None
        return int(row[0]), (self.models_dir / row[1]).read_bytes()

    def save_model(self, task_id: str, round_: int, safetensors: bytes) -> None:
        """Replace the task's stored global model atomically."""
        name = f"{task_id}.safetensors"
        self._write(name, safetensors)
        self.db.execute(
            "INSERT INTO models VALUES (?, ?, ?, ?) ON CONFLICT(task_id) DO UPDATE SET round = excluded.round, "
            "file = excluded.file, updated = excluded.updated",
            (task_id, round_, name, time.time()),
        )

    def save_initial(self, task_id: str, safetensors: bytes) -> None:
        """Keep the initial weights a task's creator uploaded (before the task itself is added)."""
        self._write(f"{task_id}.initial.safetensors", safetensors)

    def load_initial(self, task_id: str) -> bytes | None:
        """The task's uploaded initial weights, if it has some."""
        path = self.models_dir / f"{task_id}.initial.safetensors"
        return path.read_bytes() if path.is_file() else None

    def _write(self, name: str, data: bytes) -> None:
        """Write models_dir/name through a temporary file, so a crash mid-write leaves the previous one intact."""
        temporary = self.models_dir / f".{name}.tmp"
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.models_dir / name)

    def load_statistics(self, task_id: str) -> JSON | None:
        """The feature statistics the task's participants agreed on (JSON), if they did."""
        row = self.db.execute("SELECT statistics FROM statistics WHERE task_id = ?", (task_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def save_statistics(self, task_id: str, statistics: JSON) -> None:
        """Keep the task's agreed feature statistics: late joiners and a restarted server use the same ones."""
        self.db.execute("INSERT OR REPLACE INTO statistics VALUES (?, ?)", (task_id, json.dumps(statistics)))

    def close(self) -> None:
        self.db.close()
