"""The journal: every HTTP exchange and webhook delivery, newest last, for tests to inspect.

An entry is `{"seq", "at" (ISO-8601), "kind": "http" | "webhook", "method", "path", "query",
"headers" (credentials redacted), "body_sha256", "body_size" (bytes), "status", "request_id"}`;
webhook entries also carry `url`, `attempt` and `error`. Bounded: the oldest entries go first.

An HTTP exchange is recorded as it came (`record_exchange`: the clock reading, the ASGI headers) and made
into its entry, redacted, when the journal is first read: recording stays cheap on every request.
"""

from __future__ import annotations

import urllib.parse
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from fal_emulator.clock import Clock, isoformat

SECRET_HEADERS = {
    "authorization", "proxy-authorization", "x-fal-emulator-token", "x-fal-cdn-token", "x-api-key", "cookie",
    "x-fal-webhook-signature",
}  # fmt: skip
MAX_ENTRIES = 10_000


def redact_url(url: str) -> str:
    """A URL without the password of its user-info part: `https://u:p@h/x` -> `https://u:***@h/x`."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def redact(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict, with credentials cut to their scheme: `Authorization: Key ***`."""
    shown: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in SECRET_HEADERS:
            scheme, _, secret = value.partition(" ")
            value = f"{scheme} ***" if secret else "***"
        shown[lower] = value
    return shown


class Exchange:
    """One HTTP exchange as recorded: raw ASGI values, made into its journal entry on first read."""

    __slots__ = (
        "_entry", "at", "body_sha256", "body_size", "headers", "method", "path", "query", "request_id", "seq", "status",
    )  # fmt: skip

    def __init__(
        self,
        seq: int,
        at: float,
        method: str,
        path: str,
        query: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        body_sha256: str,
        body_size: int,
        status: int,
        request_id: str | None,
    ) -> None:
        self.seq, self.at, self.method, self.path, self.query, self.headers = seq, at, method, path, query, headers
        self.body_sha256, self.body_size, self.status, self.request_id = body_sha256, body_size, status, request_id
        self._entry: dict[str, Any] | None = None

    def entry(self) -> dict[str, Any]:
        if self._entry is None:
            self._entry = {
                "seq": self.seq,
                "at": isoformat(self.at),
                "kind": "http",
                "method": self.method,
                "path": self.path,
                "query": self.query.decode("latin-1"),
                "headers": redact((k.decode("latin-1"), v.decode("latin-1")) for k, v in self.headers),
                "body_sha256": self.body_sha256,
                "body_size": self.body_size,
                "status": self.status,
                "request_id": self.request_id,
            }
            self.headers = ()  # redacted now: the raw values go
        return self._entry


class Journal:
    def __init__(self, clock: Clock, max_entries: int = MAX_ENTRIES) -> None:
        self._clock = clock
        self._entries: deque[dict[str, Any] | Exchange] = deque(maxlen=max_entries)
        self._seq = 0

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        entry = {"seq": self._seq, "at": isoformat(self._clock.now()), "kind": kind, **fields}
        self._entries.append(entry)
        return entry

    @property
    def last_seq(self) -> int:
        """The `seq` of the newest entry ever recorded (0 before the first): it grows with every entry."""
        return self._seq

    def record_exchange(
        self,
        method: str,
        path: str,
        query: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        body_sha256: str,
        body_size: int,
        status: int,
        request_id: str | None,
    ) -> None:
        """Record an HTTP exchange: `query` and `headers` as ASGI gives them (latin-1 bytes; `headers` is kept,
        not copied, until the entry is first read), `status` 0 when no answer was sent."""
        self._seq += 1
        self._entries.append(
            Exchange(
                self._seq, self._clock.now(), method, path, query, headers, body_sha256, body_size, status, request_id
            )
        )

    def entries(self, filters: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Entries whose fields equal every given filter (values compared as strings)."""
        wanted = dict(filters or {})
        entries = (entry.entry() if isinstance(entry, Exchange) else entry for entry in self._entries)
        return [entry for entry in entries if all(str(entry.get(k)) == v for k, v in wanted.items())]

    def clear(self) -> None:
        self._entries.clear()
