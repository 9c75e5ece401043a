"""Lists from each store (memory, SQLite, Redis): a page of request summaries with its count, and the totals,
answered by the store's own queries, agree with the requests themselves; old SQLite files get their lists; a
page reads no request it does not show."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from fal_emulator import redis_store, sqlite_store
from fal_emulator.clock import VirtualClock
from fal_emulator.errors import FalError
from fal_emulator.failures import FAILURES
from fal_emulator.ids import IdSource
from fal_emulator.queue import Outcome, Policy, Queue, Request, Retention, Status
from fal_emulator.request_codec import decode
from fal_emulator.sqlite_store import SqliteStore
from fal_emulator.store import Store
from fal_emulator.summary import FAILED, OK, Summary, SummaryQuery, Totals, summarize, totals_of
from tests.conftest import KEY, SEED_REQUESTS, ClientFactory
from tests.stores import STORES, make_store, redis_url

T0 = 1_700_000_000.0
OUTPUT = {"video": {"url": "http://x/files/a.mp4"}}
APPS = ("fal-ai/veo3", "fal-ai/veo2")
INPUTS: list[dict[str, Any]] = [
    {"prompt": "p", "duration": "8s", "resolution": "720p", "generate_audio": True},
    {"prompt": "p", "duration": "4s"},
    {"prompt": "p", "resolution": ["not", "hashable"]},
    {"prompt": "p"},
]
ERRORS: list[FalError] = [
    FAILURES["content_policy_violation"].error(),
    FAILURES["internal_server_error"].error(),
    FalError({"detail": "untyped"}, status_code=500),  # names no error type: `HTTP 500`
]

MakeStore = Callable[[], Store]


@pytest.fixture(params=STORES)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    made: list[int] = []

    def build() -> Store:
        made.append(1)
        return make_store(request.param, tmp_path / f"{len(made)}", request)

    return build


def expected(store: Store, query: SummaryQuery, offset: int, limit: int | None) -> tuple[list[Summary], int]:
    """The page as the requests themselves give it (every request decoded: the slow way)."""
    matching = [summarize(request) for request in reversed(store.all()) if query.matches(request)]
    return matching[offset:] if limit is None else matching[offset : offset + limit], len(matching)


def same_totals(found: Totals, wanted: Totals) -> None:
    assert found.by_status == wanted.by_status
    assert list(found.by_error_type.items()) == list(wanted.by_error_type.items())
    assert found.median_seconds == pytest.approx(wanted.median_seconds)
    key = sorted  # groups in any order; priced inputs compared as text
    assert key((e, repr(sorted(p.items())), n) for e, p, n in found.succeeded) == key(
        (e, repr(sorted(p.items())), n) for e, p, n in wanted.succeeded
    )
    assert found.newest == wanted.newest and found.requests == wanted.requests


QUERIES = [
    SummaryQuery(),
    SummaryQuery(endpoint_id="fal-ai/veo2/image-to-video"),
    SummaryQuery(status=Status.IN_QUEUE),
    SummaryQuery(status=Status.COMPLETED, error_type=OK),
    SummaryQuery(error_type=FAILED),
    SummaryQuery(error_type="content_policy_violation"),
    SummaryQuery(error_type="HTTP 500"),
    SummaryQuery(endpoint_id="fal-ai/veo3/image-to-video", status=Status.COMPLETED, error_type=FAILED),
    SummaryQuery(endpoint_id="nobody/here"),
]


def test_pages_and_totals_agree_with_the_requests_under_random_operations(make: MakeStore) -> None:
    """Submits to two endpoints (successes, three kinds of error, inputs priced and not), starts, finishes,
    cancels, timed moves and retention expiries, in a seeded random order: every page (filters, offsets, limits)
    and the totals each store answers equal those computed from every request decoded."""
    store = make()
    clock = VirtualClock(start=T0, frozen=True)
    queue = Queue(store, clock, IdSource(5), Policy.parse("manual"), concurrency=3, retention=Retention(30.0, 30.0))
    chooser = random.Random(17)
    ids: list[str] = []
    error_types: set[str] = set()
    for round_ in range(6):
        for _ in range(25):
            action = chooser.random()
            if action < 0.45 or not ids:
                app = chooser.choice(APPS)
                error = chooser.choice([None, None, *ERRORS])
                outcome = Outcome.success(OUTPUT) if error is None else Outcome.failure(error)
                policy = Policy.parse(chooser.choice(["manual", "timed:1,2", "immediate"]))
                view = queue.submit(f"{app}/image-to-video", app, dict(chooser.choice(INPUTS)), outcome, policy=policy)
                ids.append(view.request_id)
            else:
                request_id = chooser.choice(ids)
                with contextlib.suppress(ValueError, FalError):  # already COMPLETED, or forgotten
                    (queue.step if action < 0.85 else queue.cancel)(request_id)
        clock.advance([1.5, 40.0, 0.0, 3.0, 40.0, 1.5][round_])  # requests move; past 30 s, completed ones expire
        queue.wake(clock.now())
        for query in QUERIES:
            for offset, limit in [(0, 10), (3, 7), (0, None), (10_000, 5), (5, 0)]:
                assert store.summaries(query, offset, limit) == expected(store, query, offset, limit), (
                    round_,
                    query,
                    offset,
                    limit,
                )
        same_totals(store.totals(), totals_of(store.all()))
        error_types |= set(store.totals().by_error_type)
    assert error_types == {"content_policy_violation", "internal_server_error", "HTTP 500", "client_cancelled"}
    assert len(store.all()) < len(ids)  # and forgot some


def test_a_reset_empties_every_list_and_the_totals(make: MakeStore) -> None:
    store = make()
    queue = Queue(store, VirtualClock(start=T0, frozen=True), IdSource(1), Policy.parse("immediate"))
    for error in [None, *ERRORS]:
        outcome = Outcome.success(OUTPUT) if error is None else Outcome.failure(error)
        queue.submit("fal-ai/veo3/image-to-video", "fal-ai/veo3", dict(INPUTS[0]), outcome)
    assert store.totals().requests == 4
    store.reset()
    assert [store.summaries(query, 0, None) for query in QUERIES] == [([], 0)] * len(QUERIES)
    empty = store.totals()
    assert (empty.requests, empty.by_error_type, empty.succeeded, empty.newest) == (0, {}, [], None)
    assert empty.median_seconds == {"IN_QUEUE": None, "IN_PROGRESS": None}


def fill(path: Path) -> list[str]:
    store = SqliteStore(path)
    queue = Queue(store, VirtualClock(start=T0, frozen=True), IdSource(2), Policy.parse("immediate"))
    ids = [
        queue.submit("fal-ai/veo3/image-to-video", "fal-ai/veo3", dict(INPUTS[n % 2]), outcome).request_id
        for n, outcome in enumerate([Outcome.success(OUTPUT), Outcome.failure(ERRORS[0])] * 3)
    ]
    store.close()
    return ids


@pytest.mark.parametrize("layout", ["no summaries table", "stale summaries"])
def test_a_sqlite_file_from_before_the_lists_gets_them(tmp_path: Path, layout: str) -> None:
    """A file of the previous layout (user_version 2), or one a previous release wrote to after this one made its
    lists (which sets user_version back to 2): its lists are built from the requests as it opens."""
    path = tmp_path / "emulator.sqlite3"
    ids = fill(path)
    with sqlite3.connect(path) as db:
        if layout == "no summaries table":
            db.execute("DROP TABLE summaries")
        else:
            db.execute("DELETE FROM summaries WHERE sequence > 2")
        db.execute("PRAGMA user_version = 2")
    db.close()
    store = SqliteStore(path)
    summaries, total = store.summaries(SummaryQuery(), 0, None)
    assert total == 6 and [summary.request_id for summary in summaries] == ids[::-1]
    assert store.totals().by_error_type == {"content_policy_violation": 3}
    assert store.summaries(SummaryQuery(error_type=OK), 0, None)[1] == 3


def test_redis_data_from_before_the_lists_gets_them(request: pytest.FixtureRequest) -> None:
    """Requests a previous release stored in Redis (no list keys, no `lists_version`) are listed and counted once
    an emulator of this release connects."""
    from fal_emulator.redis_store import RedisStore

    url = redis_url(request)
    store = RedisStore(url)
    queue = Queue(store, VirtualClock(start=T0, frozen=True), IdSource(2), Policy.parse("immediate"))
    ids = [
        queue.submit("fal-ai/veo3/image-to-video", "fal-ai/veo3", dict(INPUTS[n % 2]), outcome).request_id
        for n, outcome in enumerate([Outcome.success(OUTPUT), Outcome.failure(ERRORS[0])] * 3)
    ]
    wanted = store.summaries(SummaryQuery(), 0, None), store.totals()
    raw = redis.Redis.from_url(url)
    raw.delete(
        *raw.keys("fal-emulator:list:*"), "fal-emulator:list", "fal-emulator:summaries", "fal-emulator:succeeded"
    )
    assert RedisStore(url).summaries(SummaryQuery(), 0, None) == ([], 0)  # the version key says: already built
    raw.delete("fal-emulator:lists_version")
    raw.close()
    store = RedisStore(url)
    assert (store.summaries(SummaryQuery(), 0, None), store.totals()) == wanted
    assert [summary.request_id for summary in wanted[0][0]] == ids[::-1]


def submit(client: TestClient, scenario: str | None = None) -> str:
    endpoint = "fal-ai/veo3/image-to-video"
    headers = {**KEY, **({"X-Fal-Emulator-Scenario": scenario} if scenario else {})}
    answer = client.post(f"/{endpoint}", json=SEED_REQUESTS[endpoint], headers=headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["request_id"])


def test_the_dashboard_reads_only_the_requests_it_shows(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 120 stored requests, a page of 10 rows, the totals and the whole page decode no completed request:
    only the page's requests not yet COMPLETED (here: one) are read, as a status read reads them."""
    client = make_client(policy="instant")
    for n in range(120):
        submit(client, "content_policy_violation" if n % 10 == 0 else None)
    waiting = submit(client, "manual")
    decoded: list[str] = []

    def counted(text: str) -> Request:
        decoded.append(text)
        return decode(text)

    for module in (sqlite_store, redis_store):
        monkeypatch.setattr(module, "decode", counted)
    page = client.get("/_emulator/requests", params={"limit": 10})
    assert page.status_code == 200 and page.headers["x-total-count"] == "121"
    assert [row["request_id"] for row in page.json()][:1] == [waiting]
    totals = client.get("/_emulator/totals").json()
    assert (totals["requests"], totals["by_error_type"]) == (121, {"content_policy_violation": 12})
    assert client.get("/_emulator/ui").status_code == 200
    if client.get("/_emulator/health").json()["store"] != "memory":
        assert 0 < len(decoded) <= 12, len(decoded)  # the one queued request, a few reads per status read
