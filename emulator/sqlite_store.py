"""A durable request store in one SQLite file, shared by every process that opens it.

Same interface as `fal_emulator.store.MemoryStore`; selected with `--store sqlite` (the file is
`state_dir/emulator.sqlite3`). What it adds:

- nothing a client submitted is lost when the server stops, is killed (`kill -9`) or reloads
  (`uvicorn --reload`): each queue operation is one transaction, committed before the answer goes out
  (WAL journal; `synchronous=NORMAL` survives a killed process, not a power cut);
- several processes (`uvicorn --workers N`) serve one state: every operation takes SQLite's write lock
  (`BEGIN IMMEDIATE`) and reads requests fresh from the file.

Every lookup is O(log n): ready requests and wake-ups are indexed; the running count is a counter; and a
queue position is an order statistic, a Fenwick tree per (app, priority) over submit sequence numbers
(`queue_tree`, grown by doubling), so a position sums at most log2(sequence) rows instead of counting the
queue. A row that cannot be decoded is skipped and logged once, never fatal to later operations. Lists read
the `summaries` table beside the requests (`fal_emulator.sqlite_summaries`), never decoding every request.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from fal_emulator.lifecycle import PRIORITY_RANK, Request, Status
from fal_emulator.request_codec import UNREADABLE, decode, encode
from fal_emulator.sqlite_summaries import SummaryTable
from fal_emulator.store import WAKEUP_KINDS, WAKEUP_ORDER, Wakeup, WakeupKind
from fal_emulator.summary import Summary, SummaryQuery, Totals, summarize

log = logging.getLogger("fal_emulator.store")

VERSION = 3  # PRAGMA user_version; 0 is the layout of releases before the runner model, 2 before `summaries`
SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    queued INTEGER NOT NULL,
    data TEXT NOT NULL,
    rank INTEGER NOT NULL DEFAULT 0,
    ready INTEGER NOT NULL DEFAULT 0,
    running INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_ready ON requests (rank, sequence) WHERE ready = 1;
CREATE TABLE IF NOT EXISTS wakeups (
    at REAL NOT NULL, kind INTEGER NOT NULL, sequence INTEGER NOT NULL, request_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS wakeups_due ON wakeups (at, kind, sequence);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS queue_tree (
    app_id TEXT NOT NULL, rank INTEGER NOT NULL, node INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (app_id, rank, node)
) WITHOUT ROWID;
INSERT OR IGNORE INTO counters VALUES ('sequence', 0), ('running', 0), ('tree_size', 1);
"""
# A file written before the runner model: add the new columns, re-arm every live request (the queue
# re-checks each at its first look, then waits for its real time) and build the counters and trees.
MIGRATE_FROM_0 = """
ALTER TABLE requests ADD COLUMN rank INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN ready INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN running INTEGER NOT NULL DEFAULT 0;
DROP INDEX IF EXISTS requests_queued;
DROP TABLE IF EXISTS wakeups;
"""


def tree_nodes_up(index: int, size: int) -> list[int]:
    """The Fenwick nodes an update at `index` touches (1 <= index <= size)."""
    nodes = []
    while index <= size:
        nodes.append(index)
        index += index & -index
    return nodes


def tree_nodes_down(index: int) -> list[int]:
    """The Fenwick nodes whose sum is the prefix 1..`index`."""
    nodes = []
    while index > 0:
        nodes.append(index)
        index -= index & -index
    return nodes


def _flags(request: Request) -> tuple[int, int, int]:
    """The row's (queued, ready, running) flags for `request` now: what the queue-position tree, the ready
    index and the running count are kept from."""
    queued = int(request.status is Status.IN_QUEUE)
    return queued, int(queued and request.ready), int(request.status is Status.IN_PROGRESS)


class SqliteStore:
    """Requests in `path` (created if missing). Thread-safe within a process; shared across processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._reported: set[str] = set()  # ids of unreadable rows already logged
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._summaries = SummaryTable(self._db)
        with self.transaction():
            self._upgrade()

    def _upgrade(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
        migrate = version < VERSION and bool(columns) and "rank" not in columns
        for statement in (MIGRATE_FROM_0 if migrate else "").split(";\n") + SCHEMA.split(";\n"):
            if statement.strip():
                self._db.execute(statement)
        self._summaries.create()
        if migrate:
            self._rebuild()
        if version < VERSION and columns:  # written before `summaries` (or since, by such a release): fill it
            self._summaries.fill(summarize(request) for request in self.all())
        self._db.execute(f"PRAGMA user_version = {VERSION}")

    def _rebuild(self) -> None:
        """Counters, trees and re-check wake-ups from the requests themselves (after a migration)."""
        self._db.execute(
            "UPDATE requests SET running = (json_extract(data, '$.status') = 'IN_PROGRESS'), "
            "queued = (json_extract(data, '$.status') = 'IN_QUEUE')"
        )
        self._db.execute(
            "INSERT INTO wakeups SELECT 0, ?, sequence, request_id FROM requests WHERE queued = 1",
            (WAKEUP_ORDER["ready"],),
        )
        self._db.execute(
            "INSERT INTO wakeups SELECT 0, ?, sequence, request_id FROM requests WHERE running = 1",
            (WAKEUP_ORDER["finish"],),
        )
        self._db.execute(
            "INSERT INTO wakeups SELECT json_extract(data, '$.start_deadline'), ?, sequence, request_id "
            "FROM requests WHERE queued = 1 AND json_extract(data, '$.start_deadline') IS NOT NULL",
            (WAKEUP_ORDER["deadline"],),
        )
        running = self._db.execute("SELECT COUNT(*) FROM requests WHERE running = 1").fetchone()[0]
        self._db.execute("UPDATE counters SET value = ? WHERE name = 'running'", (running,))
        for app_id, sequence in self._db.execute("SELECT app_id, sequence FROM requests WHERE queued = 1").fetchall():
            self._tree_add(app_id, 0, sequence, 1)

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
            for table in ("requests", "wakeups", "queue_tree"):
                self._db.execute(f"DELETE FROM {table}")
            self._db.execute("UPDATE counters SET value = 0 WHERE name IN ('sequence', 'running')")
            self._db.execute("UPDATE counters SET value = 1 WHERE name = 'tree_size'")
            self._summaries.clear()
        self._reported.clear()

    def _counter(self, name: str) -> int:
        return int(self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])

    def next_sequence(self) -> int:
        with self.transaction():
            self._db.execute("UPDATE counters SET value = value + 1 WHERE name = 'sequence'")
            return self._counter("sequence")

    # -- the order statistic -------------------------------------------------------------------

    def _tree_add(self, app_id: str, rank: int, sequence: int, delta: int) -> None:
        size = self._counter("tree_size")
        while size < sequence:  # double: the new root covers everything the old root did
            self._db.execute(
                "INSERT INTO queue_tree (app_id, rank, node, count) "
                "SELECT app_id, rank, ?, count FROM queue_tree WHERE node = ?",
                (size * 2, size),
            )
            size *= 2
            self._db.execute("UPDATE counters SET value = ? WHERE name = 'tree_size'", (size,))
        nodes = tree_nodes_up(sequence, size)
        self._db.execute(
            "INSERT INTO queue_tree (app_id, rank, node, count) VALUES "
            + ",".join("(?, ?, ?, ?)" for _ in nodes)
            + " ON CONFLICT (app_id, rank, node) DO UPDATE SET count = count + excluded.count",
            [value for node in nodes for value in (app_id, rank, node, delta)],
        )

    def _tree_prefix(self, app_id: str, rank: int, index: int) -> int:
        nodes = tree_nodes_down(index)
        if not nodes:
            return 0
        row = self._db.execute(
            "SELECT COALESCE(SUM(count), 0) FROM queue_tree WHERE app_id = ? AND rank = ? AND node IN ("
            + ",".join("?" for _ in nodes)
            + ")",
            (app_id, rank, *nodes),
        ).fetchone()
        return int(row[0])

    # -- requests -------------------------------------------------------------------------------

    def _decode(self, request_id: str, text: str) -> Request | None:
        try:
            return decode(text)
        except UNREADABLE as exc:
            if request_id not in self._reported:
                self._reported.add(request_id)
                log.error("skipping request %s: its stored row is unreadable (%s: %.200s)",
                          request_id, type(exc).__name__, exc)  # fmt: skip
            return None

    def add(self, request: Request) -> None:
        state = _flags(request)
        with self.transaction():
            self._db.execute(
                "INSERT INTO requests (request_id, sequence, app_id, data, rank, queued, ready, running) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (request.request_id, request.sequence, request.app_id, encode(request),
                 PRIORITY_RANK[request.priority], *state),
            )  # fmt: skip
            self._count(request, (0, 0, 0), state)
            self._summaries.add(summarize(request))

    def get(self, request_id: str) -> Request | None:
        with self.transaction():
            row = self._db.execute("SELECT data FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return self._decode(request_id, row[0]) if row else None

    def all(self) -> list[Request]:
        """Every readable request, oldest first."""
        with self.transaction():
            rows = self._db.execute("SELECT request_id, data FROM requests ORDER BY sequence").fetchall()
        return [request for request_id, text in rows if (request := self._decode(request_id, text)) is not None]

    def save(self, request: Request) -> None:
        state = _flags(request)
        with self.transaction():
            before = self._stored_flags(request.request_id)
            if before is None:
                return
            self._db.execute(
                "UPDATE requests SET data = ?, queued = ?, ready = ?, running = ? WHERE request_id = ?",
                (encode(request), *state, request.request_id),
            )
            self._count(request, before, state)
            self._summaries.update(summarize(request))

    def _stored_flags(self, request_id: str) -> tuple[int, int, int] | None:
        row = self._db.execute("SELECT queued, ready, running FROM requests WHERE request_id = ?", (request_id,))
        found = row.fetchone()
        return None if found is None else (found[0], found[1], found[2])

    def _count(self, request: Request, before: tuple[int, int, int], state: tuple[int, int, int]) -> None:
        """Move the request's tree count and the running count from its flags `before` to `state`."""
        if state[0] != before[0]:
            self._tree_add(request.app_id, PRIORITY_RANK[request.priority], request.sequence, state[0] - before[0])
        if state[2] != before[2]:
            self._db.execute("UPDATE counters SET value = value + ? WHERE name = 'running'", (state[2] - before[2],))

    def delete(self, request: Request) -> None:
        with self.transaction():
            before = self._stored_flags(request.request_id)
            if before is None:
                return
            self._count(request, before, (0, 0, 0))  # as if COMPLETED: out of the tree and the running count
            self._db.execute("DELETE FROM requests WHERE request_id = ?", (request.request_id,))
            self._summaries.delete(request.sequence)

    # -- the runners ------------------------------------------------------------------------------

    def schedule(self, request: Request, at: float, kind: WakeupKind) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO wakeups (at, kind, sequence, request_id) VALUES (?, ?, ?, ?)",
                (at, WAKEUP_ORDER[kind], request.sequence, request.request_id),
            )

    def next_due(self, now: float) -> Wakeup | None:
        """The earliest event due at or before `now`, removed; None when nothing is due."""
        with self.transaction():
            row = self._db.execute(
                "SELECT rowid, at, kind, request_id FROM wakeups WHERE at <= ? ORDER BY at, kind, sequence LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            rowid, at, kind, request_id = row
            self._db.execute("DELETE FROM wakeups WHERE rowid = ?", (rowid,))
            return Wakeup(at, WAKEUP_KINDS[kind], self.get(request_id))

    def first_ready(self) -> Request | None:
        """The ready request first in queue order; an unreadable one loses its place (and is logged)."""
        with self.transaction():
            while True:
                row = self._db.execute(
                    "SELECT request_id, data FROM requests WHERE ready = 1 ORDER BY rank, sequence LIMIT 1"
                ).fetchone()
                if row is None:
                    return None
                request = self._decode(row[0], row[1])
                if request is not None:
                    return request
                self._db.execute("UPDATE requests SET ready = 0 WHERE request_id = ?", (row[0],))

    def running_count(self) -> int:
        with self.transaction():
            return self._counter("running")

    def queue_position(self, request: Request) -> int:
        """Requests of the same app queued ahead of `request`: the normal ones before it, and for a low
        one every normal one too (tree prefix sums)."""
        rank = PRIORITY_RANK[request.priority]
        with self.transaction():
            ahead = self._tree_prefix(request.app_id, rank, request.sequence - 1)
            if rank:
                ahead += self._tree_prefix(request.app_id, 0, self._counter("tree_size"))
        return ahead

    def queued_count(self, app_id: str) -> int:
        with self.transaction():
            row = self._db.execute(
                "SELECT COALESCE(SUM(count), 0) FROM queue_tree WHERE app_id = ? AND node = ?",
                (app_id, self._counter("tree_size")),
            ).fetchone()
        return int(row[0])

    def read_idle(self, request_id: str, app_id: str, now: float) -> tuple[Request, int | None] | None:
        """The request and its queue position, unless an event is due by `now`, in a read transaction
        (`BEGIN DEFERRED`: under WAL it waits for no writer)."""
        with self._lock:
            if self._depth:  # inside a write transaction: the queue's own path reads
                return None
            self._db.execute("BEGIN")
            try:
                if self._db.execute("SELECT 1 FROM wakeups WHERE at <= ? LIMIT 1", (now,)).fetchone():
                    return None
                row = self._db.execute(
                    "SELECT data FROM requests WHERE request_id = ? AND app_id = ?", (request_id, app_id)
                ).fetchone()
                request = self._decode(request_id, row[0]) if row else None
                if request is None:
                    return None
                queued = request.status is Status.IN_QUEUE
                self._depth += 1  # queue_position's own transaction joins this one
                try:
                    return request, self.queue_position(request) if queued else None
                finally:
                    self._depth -= 1
            finally:
                self._db.execute("COMMIT")

    # -- lists --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """A read transaction (`BEGIN DEFERRED`: under WAL it waits for no writer), or the write transaction open."""
        with self._lock:
            if self._depth:
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                self._db.execute("COMMIT")

    def summaries(self, query: SummaryQuery, offset: int, limit: int | None) -> tuple[list[Summary], int]:
        """One page of summaries, newest first, and how many match (an indexed count and range)."""
        with self._reading():
            return self._summaries.page(query, offset, limit)

    def totals(self) -> Totals:
        """Counts over every request (aggregates of the `summaries` indexes)."""
        with self._reading():
            return self._summaries.totals()

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        with self.transaction():
            return int(self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
