"""A durable request store in one SQLite file, shared by every process that opens it.

Same interface as `fal_emulator.store.MemoryStore`; selected with `--store sqlite` (the file is
`state_dir/emulator.sqlite3`). What it adds:

- nothing a client submitted is lost when the server stops, is killed (`kill -9`) or reloads
  (`uvicorn --reload`): each queue operation is one transaction, committed before the answer goes out
  (WAL journal; `synchronous=NORMAL` survives a killed process, not a power cut);
- several processes (`uvicorn --workers N`) serve one state: every operation takes SQLite's write lock
  (`BEGIN IMMEDIATE`) and reads requests fresh from the file.

Queue positions are an indexed count (`app_id, queued, sequence`); wake-ups are an indexed table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fal_emulator.queue import Outcome, Policy, Request, Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    queued INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_queued ON requests (app_id, queued, sequence);
CREATE TABLE IF NOT EXISTS wakeups (at REAL NOT NULL, sequence INTEGER NOT NULL, request_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS wakeups_at ON wakeups (at);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('sequence', 0);
"""


def encode(request: Request) -> str:
    """A request as JSON text (every field; the status as its value)."""
    fields = {field.name: getattr(request, field.name) for field in dataclasses.fields(request)}
    fields.update(
        status=request.status.value,
        policy=dataclasses.asdict(request.policy),
        outcome={"status_code": request.outcome.status_code, "body": request.outcome.body,
                 "headers": dict(request.outcome.headers)},
        script=[list(line) for line in request.script],
    )  # fmt: skip
    return json.dumps(fields, separators=(",", ":"))


def decode(text: str) -> Request:
    fields: dict[str, Any] = json.loads(text)
    fields.update(
        status=Status(fields["status"]),
        policy=Policy(**fields["policy"]),
        outcome=Outcome(**fields["outcome"]),
        script=tuple(tuple(line) for line in fields["script"]),
    )
    return Request(**fields)


class SqliteStore:
    """Requests in `path` (created if missing). Thread-safe within a process; shared across processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (re-entrant): other processes wait for it (`BEGIN IMMEDIATE`)."""
        with self._lock:
            outermost = self._depth == 0
            if outermost:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outermost:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outermost:
                self._db.execute("COMMIT")

    def reset(self) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM requests")
            self._db.execute("DELETE FROM wakeups")
            self._db.execute("UPDATE counters SET value = 0 WHERE name = 'sequence'")

    def next_sequence(self) -> int:
        with self.transaction():
            self._db.execute("UPDATE counters SET value = value + 1 WHERE name = 'sequence'")
            row = self._db.execute("SELECT value FROM counters WHERE name = 'sequence'").fetchone()
        return int(row[0])

    def add(self, request: Request) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO requests (request_id, sequence, app_id, queued, data) VALUES (?, ?, ?, ?, ?)",
                (request.request_id, request.sequence, request.app_id, request.status is Status.IN_QUEUE,
                 encode(request)),
            )  # fmt: skip

    def get(self, request_id: str) -> Request | None:
        with self.transaction():
            row = self._db.execute("SELECT data FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return decode(row[0]) if row else None

    def all(self) -> list[Request]:
        with self.transaction():
            rows = self._db.execute("SELECT data FROM requests ORDER BY sequence").fetchall()
        return [decode(row[0]) for row in rows]

    def save(self, request: Request) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE requests SET queued = ?, data = ? WHERE request_id = ?",
                (request.status is Status.IN_QUEUE, encode(request), request.request_id),
            )

    def schedule(self, request: Request, at: float) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO wakeups (at, sequence, request_id) VALUES (?, ?, ?)",
                (at, request.sequence, request.request_id),
            )

    def due(self, now: float) -> list[Request]:
        with self.transaction():
            rows = self._db.execute(
                "SELECT r.data FROM wakeups w JOIN requests r ON r.request_id = w.request_id "
                "WHERE w.at <= ? ORDER BY w.at, w.sequence",
                (now,),
            ).fetchall()
            self._db.execute("DELETE FROM wakeups WHERE at <= ?", (now,))
        return [decode(row[0]) for row in rows]

    def queue_position(self, request: Request) -> int:
        with self.transaction():
            row = self._db.execute(
                "SELECT COUNT(*) FROM requests WHERE app_id = ? AND queued = 1 AND sequence < ?",
                (request.app_id, request.sequence),
            ).fetchone()
        return int(row[0])

    def queued_count(self, app_id: str) -> int:
        with self.transaction():
            row = self._db.execute(
                "SELECT COUNT(*) FROM requests WHERE app_id = ? AND queued = 1", (app_id,)
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        with self.transaction():
            return int(self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
