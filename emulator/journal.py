"""The journal: every HTTP exchange and webhook delivery, newest last, for tests to inspect.

An entry is `{"seq", "at" (ISO-8601), "kind": "http" | "webhook", "method", "path", "query",
"headers" (credentials redacted), "body_sha256", "body_size" (bytes), "status", "request_id"}`;
webhook entries also carry `url`, `attempt` and `error`. Bounded: the oldest entries go first.
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


class Journal:
    def __init__(self, clock: Clock, max_entries: int = MAX_ENTRIES) -> None:
        self._clock = clock
        self._entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
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

    def entries(self, filters: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Entries whose fields equal every given filter (values compared as strings)."""
        wanted = dict(filters or {})
        return [entry for entry in self._entries if all(str(entry.get(k)) == v for k, v in wanted.items())]

    def clear(self) -> None:
        self._entries.clear()
