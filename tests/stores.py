"""The stores the in-process suites run over, made fresh for one test."""

from __future__ import annotations

from pathlib import Path

import pytest

from fal_emulator.queue import Store
from fal_emulator.sqlite_store import SqliteStore
from fal_emulator.store import MemoryStore

STORES = ["memory", "sqlite"]


def make_store(name: str, directory: Path | None = None, request: pytest.FixtureRequest | None = None) -> Store:
    """A new, empty store of kind `name` (`directory` holds a SQLite file)."""
    if name == "sqlite":
        assert directory is not None
        return SqliteStore(directory / "emulator.sqlite3")
    return MemoryStore()
