"""The delivery books: two processes' books on one state never claim the same attempt, a dead holder's claim
expires and is taken over, and a URL with secrets is never written in clear."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from fal_emulator.deliveries import Delivery, DeliveryBook, DeliveryCodec, MemoryBook, UrlSeal, make_book
from fal_emulator.redis_deliveries import RedisBook
from fal_emulator.settings import Settings
from fal_emulator.sqlite_deliveries import SqliteBook
from tests.stores import redis_url

SECRET_URL = "http://hook-user:pw-0f9e8d7c@127.0.0.1:9/hook?token=tk-1a2b3c4d&plain=1"


class Wall:
    """An injected wall clock for claims (POSIX seconds)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


BookFactory = Callable[..., DeliveryBook]


@pytest.fixture(params=["sqlite", "redis"])
def books(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[BookFactory, Wall]:
    """Makes a durable book on one shared state (a process each), all timed by one injected wall clock."""
    wall = Wall()
    url = redis_url(request) if request.param == "redis" else "redis://unused"

    def make(*, key_dir: Path | None = None) -> DeliveryBook:
        """A process's book on the shared state; `key_dir`: a host whose state dir (so its key) is elsewhere."""
        if key_dir is None:
            return make_book(Settings(store=request.param, state_dir=tmp_path, redis_url=url), wall=wall)
        codec = DeliveryCodec(UrlSeal(key_dir))
        if request.param == "sqlite":
            return SqliteBook(tmp_path / "webhooks.sqlite3", codec, wall=wall)
        return RedisBook(url, codec, wall=wall)

    return make, wall


def test_one_process_claims_each_attempt(books: tuple[BookFactory, Wall]) -> None:
    make, _ = books
    first, second = make(), make()
    first.add(Delivery("r1", "http://127.0.0.1:9/hook"))
    assert [d.request_id for d in second.due(0.0)] == ["r1"]  # not attempted yet: due whatever the time
    claimed = first.claim("r1", 25.0)
    assert claimed is not None and claimed.url == "http://127.0.0.1:9/hook"
    assert second.claim("r1", 25.0) is None and second.due(0.0) == []  # held
    claimed.attempts, claimed.next_at, claimed.body = 1, 107.0, '{"status": "OK"}'
    first.release(claimed)
    assert second.due(106.0) == []  # the retry is not due yet, on the emulator's clock
    retried = second.claim("r1", 130.0)
    assert retried is not None and (retried.attempts, retried.body) == (1, '{"status": "OK"}')
    second.finish("r1")
    assert len(first) == 0 and first.claim("r1", 25.0) is None  # delivered: nothing left to send


def test_a_dead_holders_claim_expires_and_is_taken_over(books: tuple[BookFactory, Wall]) -> None:
    make, wall = books
    dead, live = make(), make()
    dead.add(Delivery("r1", "http://127.0.0.1:9/hook"))
    held = dead.claim("r1", 25.0)
    assert held is not None
    wall.now += 25.0
    assert live.claim("r1", 25.0) is None  # the lease still runs
    wall.now += 0.5
    taken = live.claim("r1", 25.0)
    assert taken is not None
    held.attempts, held.next_at = 1, 7.0
    dead.release(held)  # a write by the old holder is refused: the attempt is the new holder's
    dead.finish("r1")
    assert len(live) == 1
    taken.attempts, taken.next_at = 1, 50.0
    live.release(taken)
    [stored] = live.due(50.0)
    assert (stored.attempts, stored.next_at) == (1, 50.0)


def test_reset_forgets_deliveries_and_a_late_release_does_not_bring_one_back(books: tuple[BookFactory, Wall]) -> None:
    make, _ = books
    book = make()
    book.add(Delivery("r1", "http://127.0.0.1:9/hook"))
    claimed = book.claim("r1", 25.0)
    assert claimed is not None
    make().reset()
    claimed.next_at = 7.0
    book.release(claimed)
    assert len(book) == 0 and book.due(1e12) == []


def test_a_url_with_secrets_is_sealed_and_opened_only_with_the_state_dirs_key(
    books: tuple[BookFactory, Wall], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make, _ = books
    make().add(Delivery("r1", SECRET_URL))
    [delivery] = make().due(0.0)  # another process on the same state dir opens it
    assert delivery.url == SECRET_URL
    written = b"".join(path.read_bytes() for path in tmp_path.glob("webhooks.sqlite3*"))
    assert b"pw-0f9e8d7c" not in written and b"tk-1a2b3c4d" not in written
    assert (tmp_path / "webhook-url.key").stat().st_mode & 0o777 == 0o600
    with caplog.at_level(logging.WARNING, logger="fal_emulator.webhooks"):
        elsewhere = make(key_dir=tmp_path / "other-host")  # a host with its own state dir: another key
        assert elsewhere.due(0.0) == [] and elsewhere.claim("r1", 25.0) is None
    assert "left to another process" in caplog.text
    assert make().claim("r1", 25.0) is not None  # still there for the processes that hold the key


def test_the_memory_book_keeps_todays_behaviour() -> None:
    book = MemoryBook()
    book.add(Delivery("r1", SECRET_URL))
    claimed = book.claim("r1", 25.0)
    assert claimed is not None and claimed.url == SECRET_URL and book.claim("r1", 25.0) is None
    claimed.attempts, claimed.next_at = 1, 7.0
    book.release(claimed)
    assert book.due(6.9) == [] and [d.attempts for d in book.due(7.0)] == [1]
