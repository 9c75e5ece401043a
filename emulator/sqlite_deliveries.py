"""Pending webhook deliveries in `state_dir/webhooks.sqlite3` (`--store sqlite`), shared by the processes on
that state dir (`fal_emulator.deliveries`).

One table, `deliveries` (request id, next attempt time, the claim's holder and lease end, the delivery as
JSON text). A claim is one `BEGIN IMMEDIATE` transaction: the row is taken only if no live claim holds it, so
two processes never make the same attempt. Every write is committed before it returns (WAL,
`synchronous=NORMAL`: it survives a killed process). The file is separate from the request store's, so
deliveries never wait for the queue's lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from fal_emulator.deliveries import MAX_DUE, Delivery, DeliveryCodec

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    request_id TEXT PRIMARY KEY,
    next_at REAL NOT NULL,
    holder TEXT,
    lease_until REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_at)
"""
FREE = "(holder IS NULL OR lease_until < ?)"  # no live claim holds the row


class SqliteBook:
    """Deliveries in the SQLite file at `path` (created if missing); thread-safe, shared across processes."""

    def __init__(self, path: Path, codec: DeliveryCodec, *, wall: Callable[[], float] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.codec = codec
        self.holder = uuid.uuid4().hex  # this book's claims
        self._wall = wall or time.time
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._transaction():
            for statement in SCHEMA.split(";\n"):
                self._db.execute(statement)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, delivery: Delivery) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO deliveries (request_id, next_at, holder, lease_until, data) "
                "VALUES (?, ?, NULL, NULL, ?)",
                (delivery.request_id, delivery.next_at, self.codec.encode(delivery)),
            )

    def due(self, now: float) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT data FROM deliveries WHERE next_at <= ? AND {FREE} ORDER BY next_at LIMIT ?",
                (now, self._wall(), MAX_DUE),
            ).fetchall()
        return [delivery for (text,) in rows if (delivery := self.codec.decode(text)) is not None]

    def claim(self, request_id: str, lease: float) -> Delivery | None:
        wall = self._wall()
        with self._transaction() as db:
            query = f"SELECT data FROM deliveries WHERE request_id = ? AND {FREE}"
            row = db.execute(query, (request_id, wall)).fetchone()
            delivery = None if row is None else self.codec.decode(row[0])
            if delivery is None:
                return None
            db.execute(
                "UPDATE deliveries SET holder = ?, lease_until = ? WHERE request_id = ?",
                (self.holder, wall + lease, request_id),
            )
        return delivery

    def release(self, delivery: Delivery) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET data = ?, next_at = ?, holder = NULL, lease_until = NULL "
                "WHERE request_id = ? AND holder = ?",
                (self.codec.encode(delivery), delivery.next_at, delivery.request_id, self.holder),
            )

    def finish(self, request_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                f"DELETE FROM deliveries WHERE request_id = ? AND (holder = ? OR {FREE})",
                (request_id, self.holder, self._wall()),
            )

    def reset(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM deliveries")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])
