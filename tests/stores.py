"""The stores the in-process suites run over, made fresh for one test."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from fal_emulator.queue import Store
from fal_emulator.sqlite_store import SqliteStore
from fal_emulator.store import MemoryStore

STORES = ["memory", "sqlite", "redis"]
_databases = itertools.count()


def redis_url(request: pytest.FixtureRequest) -> str:
    """An empty Redis database of the session's redis-server (16 databases, reused in turn)."""
    server = request.getfixturevalue("redis_server")
    return str(server.flush(next(_databases) % 16))


def make_store(name: str, directory: Path | None = None, request: pytest.FixtureRequest | None = None) -> Store:
    """A new, empty store of kind `name` (`directory` holds a SQLite file; `request` reaches redis-server)."""
    if name == "sqlite":
        assert directory is not None
        return SqliteStore(directory / "emulator.sqlite3")
    if name == "redis":
        from fal_emulator.redis_store import RedisStore

        assert request is not None
        return RedisStore(redis_url(request))
    return MemoryStore()
