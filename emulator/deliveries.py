"""Pending webhook deliveries: where each one stands, kept where the requests are, and claimed per attempt.

A `Delivery` is one request's webhook: its URL, how many attempts were made, when the next one is due (POSIX
seconds on the emulator's clock; 0 before the first), and the body the first attempt sent (retries resend it,
even after the result expired). A `DeliveryBook` keeps them:

- `MemoryBook` (the memory store): in the process, as before;
- `SqliteBook` (`--store sqlite`, `fal_emulator.sqlite_deliveries`): `state_dir/webhooks.sqlite3`, shared by
  every process on that state dir;
- `RedisBook` (`--store redis`, `fal_emulator.redis_deliveries`): keys beside the Redis store, shared by hosts.

A durable delivery is written before the submit is answered, so a process killed (`kill -9`) before it
delivered leaves it to any process on the same state: after a restart, or another worker or host. Each
attempt is made by one process: it first claims the delivery (an atomic claim with a lease on the wall
clock, `time.time()`), and the claim ends when it writes the attempt's result (the next attempt's time, or
the delivery's end). A claim whose holder died expires after its lease and is taken over; the lease outlasts
an attempt's timeout, so a live holder never loses it mid-attempt.

A URL with secrets (a password, or a query parameter named like a secret: `redact_url` would change it) is
never written in clear: a durable book keeps it sealed (Fernet, `cryptography`) with the key in
`state_dir/webhook-url.key` (mode 0600). Processes that share the state dir (or a copy of that file) can open
it; one that cannot leaves the delivery to those that can. The journal and the request views never show a
delivery's URL (they show the request's redacted `webhook_url`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken

from fal_emulator.journal import redact_url
from fal_emulator.settings import Settings

log = logging.getLogger("fal_emulator.webhooks")

MAX_DUE = 1000  # deliveries handed out per look


@dataclass
class Delivery:
    """One request's webhook. `body` is the JSON text the first attempt sent (None before it); `next_at` and
    `completed_at` are POSIX seconds on the emulator's clock."""

    request_id: str
    url: str
    attempts: int = 0
    next_at: float = 0.0
    payload_error: bool = False
    gateway_request_id: str | None = None
    body: str | None = None
    completed_at: float = 0.0


class DeliveryBook(Protocol):
    """Where pending deliveries live (see the module's docstring). `lease` and the claims are wall-clock seconds.

    `due(now)`: deliveries whose next attempt is due by `now` (every one not attempted yet) and that no live
    claim holds, oldest due first. `claim(request_id, lease)`: the delivery as stored now, held by this book for
    `lease` seconds, or None (held by another, gone, or unreadable here). `release(delivery)`: write a claimed
    delivery's new state and let it go; `finish(request_id)`: forget a delivery (delivered, or given up) unless
    another process holds a live claim on it. Writes with a claim that is no longer ours (it expired and was
    taken over, or `reset`) are ignored.
    """

    def add(self, delivery: Delivery) -> None: ...
    def due(self, now: float) -> list[Delivery]: ...
    def claim(self, request_id: str, lease: float) -> Delivery | None: ...
    def release(self, delivery: Delivery) -> None: ...
    def finish(self, request_id: str) -> None: ...
    def reset(self) -> None: ...
    def __len__(self) -> int: ...


class MemoryBook:
    """Deliveries in this process (the memory store): one process, so a claim is a set entry."""

    def __init__(self) -> None:
        self._deliveries: dict[str, Delivery] = {}
        self._claimed: set[str] = set()

    def add(self, delivery: Delivery) -> None:
        self._deliveries[delivery.request_id] = delivery

    def due(self, now: float) -> list[Delivery]:
        due = [d for d in self._deliveries.values() if d.next_at <= now and d.request_id not in self._claimed]
        return sorted(due, key=lambda delivery: delivery.next_at)[:MAX_DUE]

    def claim(self, request_id: str, lease: float) -> Delivery | None:
        delivery = self._deliveries.get(request_id)
        if delivery is None or request_id in self._claimed:
            return None
        self._claimed.add(request_id)
        return dataclasses.replace(delivery)

    def release(self, delivery: Delivery) -> None:
        if delivery.request_id in self._claimed:
            self._claimed.discard(delivery.request_id)
            self._deliveries[delivery.request_id] = delivery

    def finish(self, request_id: str) -> None:
        self._claimed.discard(request_id)
        self._deliveries.pop(request_id, None)

    def reset(self) -> None:
        self._deliveries.clear()
        self._claimed.clear()

    def __len__(self) -> int:
        return len(self._deliveries)


class UrlSeal:
    """Seals URLs with secrets (Fernet) under the key in `state_dir/webhook-url.key`, made on first need (0600)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "webhook-url.key"
        self._fernet: Fernet | None = None

    def _key(self, create: bool) -> Fernet | None:
        if self._fernet is None:
            if not self.path.exists():
                if not create:
                    return None
                self._create()
            self._fernet = Fernet(self.path.read_bytes().strip())
        return self._fernet

    def _create(self) -> None:
        """Write a new key unless another process got there first (a temporary file linked into place)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(Fernet.generate_key())
        try:
            os.link(temporary, self.path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()

    def seal(self, url: str) -> str:
        fernet = self._key(create=True)
        assert fernet is not None
        return fernet.encrypt(url.encode()).decode()

    def open(self, sealed: str) -> str | None:
        """The URL, or None when this process has not the key that sealed it."""
        fernet = self._key(create=False)
        if fernet is None:
            return None
        try:
            return fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None


class DeliveryCodec:
    """A delivery as JSON text for a durable book: its URL in clear unless it has secrets, then sealed."""

    def __init__(self, seal: UrlSeal) -> None:
        self.seal = seal
        self._reported: set[str] = set()

    def encode(self, delivery: Delivery) -> str:
        fields: dict[str, Any] = dataclasses.asdict(delivery)
        url = fields.pop("url")
        if redact_url(url) == url:
            fields["url"] = url
        else:
            fields["sealed_url"] = self.seal.seal(url)
        return json.dumps(fields)

    def decode(self, text: str) -> Delivery | None:
        """The delivery, or None (logged once) when its text is unreadable or its URL cannot be opened here."""
        request_id = "?"
        try:
            fields = json.loads(text)
            request_id = str(fields.get("request_id"))
            sealed = fields.pop("sealed_url", None)
            if sealed is not None:
                url = self.seal.open(sealed)
                if url is None:
                    self._report(request_id, f"its URL is sealed with a key other than {self.seal.path}")
                    return None
                fields["url"] = url
            return Delivery(**fields)
        except (ValueError, TypeError) as exc:
            self._report(request_id, f"its stored record is unreadable ({type(exc).__name__}: {exc})")
            return None

    def _report(self, request_id: str, why: str) -> None:
        if request_id not in self._reported:
            self._reported.add(request_id)
            log.warning("webhook delivery for request %s left to another process: %s", request_id, why)


def make_book(settings: Settings, *, wall: Callable[[], float] | None = None) -> DeliveryBook:
    """The book for the settings' store: in memory, `state_dir/webhooks.sqlite3`, or Redis at `redis_url`.
    `wall` (POSIX seconds) times claims; `time.time` by default."""
    codec = DeliveryCodec(UrlSeal(settings.state_dir))
    if settings.store == "sqlite":
        from fal_emulator.sqlite_deliveries import SqliteBook

        return SqliteBook(settings.state_dir / "webhooks.sqlite3", codec, wall=wall)
    if settings.store == "redis":
        from fal_emulator.redis_deliveries import RedisBook

        return RedisBook(settings.redis_url, codec, wall=wall)
    return MemoryBook()


def close_book(book: DeliveryBook) -> None:
    """Close a durable book's connection (a memory book has none)."""
    close = getattr(book, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()
