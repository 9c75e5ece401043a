"""The SQLite store: its order statistic agrees with the memory store, old files upgrade, bad rows are skipped."""

from __future__ import annotations

import logging
import random
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from fal_emulator import jsontext
from fal_emulator.clock import VirtualClock
from fal_emulator.ids import IdSource
from fal_emulator.queue import Outcome, Policy, Queue, Request, Status
from fal_emulator.request_codec import encode
from fal_emulator.sqlite_store import SqliteStore
from fal_emulator.store import MemoryStore
from fal_emulator.summary import SummaryQuery

T0 = 1_700_000_000.0
OUTPUT = {"video": {"url": "http://x/files/a.mp4"}}
Result = TypeVar("Result")


def test_queue_positions_agree_with_the_memory_store_under_random_operations(tmp_path: Path) -> None:
    """Submits of both priorities to two apps, starts, cancels and completions, in a seeded random order:
    every queue position and queue length the tree gives equals the memory store's sorted lists."""
    clock = VirtualClock(start=T0, frozen=True)
    queues = [
        Queue(store, clock, IdSource(3), Policy.parse("manual"))
        for store in (MemoryStore(), SqliteStore(tmp_path / "emulator.sqlite3"))
    ]
    chooser = random.Random(11)
    live: list[str] = []
    for _ in range(700):  # more than 512 submits: the tree doubles several times
        action = chooser.random()
        if action < 0.6 or not live:
            app = chooser.choice(["fal-ai/veo3", "fal-ai/veo2"])
            priority = chooser.choice(["normal", "normal", "low"])
            ids = {q.submit(app, app, {}, Outcome.success(OUTPUT), priority=priority).request_id for q in queues}  # type: ignore[arg-type]
            assert len(ids) == 1
            live.append(ids.pop())
        else:
            request_id = live.pop(chooser.randrange(len(live)))
            for queue in queues:
                (queue.step if action < 0.85 else queue.cancel)(request_id)
        sample = chooser.sample(live, min(5, len(live)))
        views = [[queue.status(request_id, poll=False) for request_id in sample] for queue in queues]
        assert [v.queue_position for v in views[0]] == [v.queue_position for v in views[1]]
        assert [queue.queued_count("fal-ai/veo3") for queue in queues][0] == queues[1].queued_count("fal-ai/veo3")
    assert any(view.queue_position for view in views[1])


OLD_SCHEMA = """
CREATE TABLE requests (request_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL UNIQUE, app_id TEXT NOT NULL,
    queued INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX requests_queued ON requests (app_id, queued, sequence);
CREATE TABLE wakeups (at REAL NOT NULL, sequence INTEGER NOT NULL, request_id TEXT NOT NULL);
CREATE INDEX wakeups_at ON wakeups (at);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters VALUES ('sequence', 3);
"""
NEW_FIELDS = ("priority", "ready", "expires_at")


def old_row(request: Request) -> str:
    """The request as the release before the runner model stored it (no fields it did not have)."""
    fields = jsontext.loads(encode(request))
    return jsontext.dumps({name: value for name, value in fields.items() if name not in NEW_FIELDS})


def test_a_file_from_the_previous_release_upgrades_and_keeps_running(tmp_path: Path) -> None:
    timed = Policy.parse("timed:1,10")
    requests = [
        Request(f"00000000-0000-4000-8000-00000000000{n}", "fal-ai/veo3/image-to-video", "fal-ai/veo3", {},
                Outcome.success(OUTPUT), timed, T0, n, entered_at=T0)
        for n in (1, 2, 3)
    ]  # fmt: skip
    running, queued, done = requests
    running.status, running.started_at, running.entered_at = Status.IN_PROGRESS, T0 + 1, T0 + 1
    queued.start_deadline = T0 + 100
    done.status, done.started_at, done.completed_at = Status.COMPLETED, T0 + 1, T0 + 11
    path = tmp_path / "emulator.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        for request in requests:
            db.execute("INSERT INTO requests VALUES (?, ?, ?, ?, ?)", (request.request_id, request.sequence,
                       request.app_id, request.status is Status.IN_QUEUE, old_row(request)))  # fmt: skip
        db.execute("INSERT INTO wakeups VALUES (?, ?, ?)", (T0 + 1, 2, queued.request_id))
    db.close()
    clock = VirtualClock(start=T0 + 5, frozen=True)
    queue = Queue(SqliteStore(path), clock, IdSource(3), timed)
    assert [queue.status(r.request_id, poll=False).status for r in requests] == [Status.IN_PROGRESS] * 2 + [
        Status.COMPLETED
    ]
    assert queue.store.get(queued.request_id).started_at == T0 + 1  # type: ignore[union-attr]
    assert queue.submit("fal-ai/veo3", "fal-ai/veo3", {}, Outcome.success(OUTPUT)).queue_position == 0
    clock.advance(6.0)
    assert [queue.status(r.request_id, poll=False).status for r in requests] == [Status.COMPLETED] * 3
    assert queue.store.get(running.request_id).completed_at == T0 + 11  # type: ignore[union-attr]
    summaries, total = queue.store.summaries(SummaryQuery(), 0, None)  # the lists were built as it opened
    assert total == 4 and [summary.status for summary in summaries] == [Status.IN_PROGRESS] + [Status.COMPLETED] * 3


def test_an_unreadable_row_is_skipped_and_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SqliteStore(tmp_path / "emulator.sqlite3")
    clock = VirtualClock(start=T0, frozen=True)
    queue = Queue(store, clock, IdSource(3), Policy.parse("timed:1,1"), concurrency=1)
    broken, waiting = (queue.submit("a/b", "a/b", {}, Outcome.success(OUTPUT)).request_id for _ in range(2))
    with sqlite3.connect(store.path) as db:  # a row no release could read
        db.execute("UPDATE requests SET data = '[[[' WHERE request_id = ?", (broken,))
    db.close()
    clock.advance(10.0)
    with caplog.at_level(logging.ERROR, logger="fal_emulator.store"):
        for _ in range(3):
            later = queue.submit("a/b", "a/b", {}, Outcome.success(OUTPUT)).request_id
            assert queue.status(later, poll=False).status is Status.IN_QUEUE
    assert queue.status(waiting, poll=False).status is Status.COMPLETED
    assert [record.getMessage().split(":")[0] for record in caplog.records] == [f"skipping request {broken}"]


def nested(depth: int) -> Any:
    return jsontext.loads("[" * depth + "]" * depth)


def at_depth(frames: int, work: Callable[[], Result]) -> Result:
    """Run `work` under `frames` more Python frames (a deep call stack, as a busy server has)."""
    return work() if frames <= 0 else at_depth(frames - 1, work)


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_an_input_nested_as_deep_as_the_edge_accepts_is_stored_and_read_back(tmp_path: Path, store_kind: str) -> None:
    depth = sys.getrecursionlimit() - 20  # about what json.loads parses on a shallow stack
    store = MemoryStore() if store_kind == "memory" else SqliteStore(tmp_path / "emulator.sqlite3")
    queue = Queue(store, VirtualClock(start=T0, frozen=True), IdSource(3), Policy.parse("timed:1,1"))
    deep_input = {"prompt": "p", "extra": nested(depth)}

    def roundtrip() -> str:
        request_id = queue.submit("a/b", "a/b", deep_input, Outcome.success(OUTPUT)).request_id
        queue.clock.advance(5.0)  # type: ignore[attr-defined]
        assert queue.status(request_id).status is Status.COMPLETED  # through the wake-up path
        request = store.get(request_id)
        assert request is not None
        return jsontext.dumps(request.input)

    assert at_depth(200, roundtrip) == jsontext.dumps(deep_input)
