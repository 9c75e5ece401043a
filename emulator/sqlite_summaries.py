"""The SQLite store's lists (`fal_emulator.summary`): the `summaries` table, one row per request.

Each row is keyed by the request's submit sequence (so newest first is a descending scan) and holds its summary
as JSON beside the columns lists filter and count on, each indexed: status, endpoint id, outcome (`ok` or the
error type, once COMPLETED), the seconds spent queued and running, and the priced inputs of the successes. It
is a table of its own, not columns of `requests`, so that a list never reads past a request's data (a large
input spills into overflow pages that SQLite reads in turn). A page is an indexed count and range; the totals
are `GROUP BY` aggregates and order statistics (a median is the middle row of an index); nothing is decoded
but the page's summaries.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from typing import Any

from fal_emulator import jsontext
from fal_emulator.lifecycle import Status
from fal_emulator.summary import FAILED, OK, Summary, SummaryQuery, Totals, ranked

log = logging.getLogger("fal_emulator.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS summaries (
    sequence INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    queue_seconds REAL,
    run_seconds REAL,
    priced TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS summaries_status ON summaries (status);
CREATE INDEX IF NOT EXISTS summaries_endpoint ON summaries (endpoint_id);
CREATE INDEX IF NOT EXISTS summaries_outcome ON summaries (outcome) WHERE outcome IS NOT NULL;
CREATE INDEX IF NOT EXISTS summaries_succeeded ON summaries (endpoint_id, priced) WHERE outcome = 'ok';
CREATE INDEX IF NOT EXISTS summaries_queue_seconds ON summaries (queue_seconds) WHERE queue_seconds IS NOT NULL;
CREATE INDEX IF NOT EXISTS summaries_run_seconds ON summaries (run_seconds) WHERE run_seconds IS NOT NULL;
"""
COLUMNS = "sequence, request_id, endpoint_id, status, outcome, queue_seconds, run_seconds, priced, summary"
INSERT = f"INSERT OR REPLACE INTO summaries ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
UPDATE = ("UPDATE summaries SET status = ?4, outcome = ?5, queue_seconds = ?6, run_seconds = ?7, summary = ?9 "
          "WHERE sequence = ?1 AND summary IS NOT ?9")  # fmt: skip


def row(summary: Summary) -> tuple[Any, ...]:
    """The `summaries` row of a summary, in COLUMNS order."""
    return (summary.sequence, summary.request_id, summary.endpoint_id, summary.status.value, summary.outcome,
            summary.queue_seconds, summary.run_seconds, summary.priced_key(), summary.to_json())  # fmt: skip


class SummaryTable:
    """The `summaries` table on `db`; the caller holds the transaction each call runs in."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._reported: set[int] = set()  # sequences of unreadable summaries already logged

    def create(self) -> None:
        for statement in SCHEMA.split(";\n"):
            if statement.strip():
                self._db.execute(statement)

    def fill(self, summaries: Iterable[Summary]) -> None:
        """Replace every row with these (a migration)."""
        self._db.execute("DELETE FROM summaries")
        self._db.executemany(INSERT, (row(summary) for summary in summaries))

    def clear(self) -> None:
        self._db.execute("DELETE FROM summaries")
        self._reported.clear()

    def add(self, summary: Summary) -> None:
        self._db.execute(INSERT, row(summary))

    def update(self, summary: Summary) -> None:
        """Rewrite the request's summary row, unless it is unchanged (a poll counted, a log line shown): then
        no index is touched."""
        self._db.execute(UPDATE, row(summary))

    def delete(self, sequence: int) -> None:
        self._db.execute("DELETE FROM summaries WHERE sequence = ?", (sequence,))

    def page(self, query: SummaryQuery, offset: int, limit: int | None) -> tuple[list[Summary], int]:
        """The summaries `query` matches, newest first, from `offset` (at most `limit`), and how many match."""
        clauses, values = ["1"], []
        if query.endpoint_id is not None:
            clauses.append("endpoint_id = ?")
            values.append(query.endpoint_id)
        if query.status is not None:
            clauses.append("status = ?")
            values.append(query.status.value)
        if query.error_type == FAILED:
            clauses.append("outcome IS NOT NULL AND outcome != ?")
            values.append(OK)
        elif query.error_type is not None:
            clauses.append("outcome = ?")
            values.append(query.error_type)
        where = " AND ".join(clauses)
        total = int(self._db.execute(f"SELECT COUNT(*) FROM summaries WHERE {where}", values).fetchone()[0])
        rows = self._db.execute(
            f"SELECT sequence, summary FROM summaries WHERE {where} ORDER BY sequence DESC LIMIT ? OFFSET ?",
            (*values, -1 if limit is None else limit, offset),
        ).fetchall()
        return [summary for sequence, text in rows if (summary := self._read(sequence, text))], total

    def _read(self, sequence: int, text: str) -> Summary | None:
        try:
            return Summary.from_json(text)
        except (ValueError, TypeError, KeyError) as exc:
            if sequence not in self._reported:
                self._reported.add(sequence)
                log.error("skipping the summary of request #%d: it is unreadable (%s: %.200s)",
                          sequence, type(exc).__name__, exc)  # fmt: skip
            return None

    def _median(self, column: str) -> float | None:
        """The median of a column over the rows that have it: the middle one or two rows of its index."""
        where = f"FROM summaries WHERE {column} IS NOT NULL"
        count = int(self._db.execute(f"SELECT COUNT(*) {where}").fetchone()[0])
        if not count:
            return None
        middle = self._db.execute(
            f"SELECT {column} {where} ORDER BY {column} LIMIT ? OFFSET ?", (2 - count % 2, (count - 1) // 2)
        ).fetchall()
        return sum(float(value) for (value,) in middle) / len(middle)

    def totals(self) -> Totals:
        """Counts over every request: aggregates of the indexes."""
        by_status = {status.value: 0 for status in Status}
        by_status.update(self._db.execute("SELECT status, COUNT(*) FROM summaries GROUP BY status").fetchall())
        errors = self._db.execute(
            "SELECT outcome, COUNT(*) FROM summaries WHERE outcome IS NOT NULL AND outcome != ? GROUP BY outcome",
            (OK,),
        ).fetchall()
        groups = self._db.execute(  # a scan of the partial index, already in group order (10x the planner's own)
            "SELECT endpoint_id, priced, COUNT(*) FROM summaries INDEXED BY summaries_succeeded WHERE outcome = 'ok' "
            "GROUP BY endpoint_id, priced"
        ).fetchall()
        newest = self._db.execute("SELECT request_id FROM summaries ORDER BY sequence DESC LIMIT 1").fetchone()
        return Totals(
            by_status=by_status,
            by_error_type=ranked(errors),
            median_seconds={
                Status.IN_QUEUE.value: self._median("queue_seconds"),
                Status.IN_PROGRESS.value: self._median("run_seconds"),
            },  # fmt: skip
            succeeded=[(endpoint_id, jsontext.loads(priced), count) for endpoint_id, priced, count in groups],
            newest=newest[0] if newest else None,
        )
