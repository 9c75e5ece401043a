"""The journal: every HTTP exchange and webhook delivery, newest last, for tests to inspect.

An entry is `{"seq", "at" (ISO-8601), "kind": "http" | "webhook", "method", "path", "query" (secrets
redacted), "headers" (secrets redacted), "body_sha256", "body_size" (bytes), "status", "request_id"}`;
webhook entries also carry `url`, `attempt` and `error`. Bounded: the oldest entries go first.

An HTTP exchange is recorded as it came (`record_exchange`: the clock reading, the ASGI headers) and made
into its entry, redacted, when the journal is first read: recording stays cheap on every request.
"""

from __future__ import annotations

import re
import urllib.parse
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from fal_emulator.clock import Clock, isoformat

SECRET_HEADERS = {
    "authorization", "proxy-authorization", "x-fal-emulator-token", "x-fal-cdn-token", "x-api-key", "cookie",
    "set-cookie", "x-fal-webhook-signature",
}  # fmt: skip
# Any other header or query parameter whose name says it carries a secret.
SECRET_NAME = re.compile(r"token|secret|passw|pwd|auth|api[-_]?key|sig(nature)?$|session|cookie|credential", re.I)
REDACTED = "***"
MAX_ENTRIES = 10_000


def redact_url(url: str) -> str:
    """A URL without its secrets: the password of its user-info part and the values of query parameters
    named like secrets (`https://u:p@h/x?token=t&a=1` -> `https://u:***@h/x?token=***&a=1`).

    Never raises: a URL that cannot be parsed comes back as `***`.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return REDACTED
    if password is not None:
        user = parts.netloc.rpartition("@")[0].partition(":")[0]
        parts = parts._replace(netloc=f"{user}:{REDACTED}@{parts.netloc.rpartition('@')[2]}")
    if parts.query:
        parts = parts._replace(query=redact_query(parts.query))
    return urllib.parse.urlunsplit(parts)


def _redact_value(name: str, value: str) -> str:
    if SECRET_NAME.search(name):
        return REDACTED
    return redact_url(value) if "://" in value else value


def redact_query(query: str) -> str:
    """A query string with secret-named parameters' values and URL credentials redacted
    (`fal_webhook=https://u:pw@h/` -> `fal_webhook=https://u:***@h/`)."""
    if not query:
        return query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return urllib.parse.urlencode([(name, _redact_value(name, value)) for name, value in pairs], safe=":/*@")


def redact(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict, with credentials cut to their scheme (`Authorization: Key ***`), other secret-named
    headers replaced by `***`, and URLs (`x-fal-target-url`) without their credentials."""
    shown: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in SECRET_HEADERS:
            scheme, _, secret = value.partition(" ")
            value = f"{scheme} {REDACTED}" if secret else REDACTED
        else:
            value = _redact_value(lower, value)
        shown[lower] = value
    return shown


# An HTTP exchange as recorded: (seq, at, method, path, query, headers, body_sha256, body_size, status, request_id),
# raw ASGI values (latin-1 bytes) in a tuple of immutable values, which the garbage collector stops tracking.
Exchange = tuple[int, float, str, str, bytes, tuple[tuple[bytes, bytes], ...], str, int, int, "str | None"]


# A queue route's path names its request (`/{app}/requests/{request_id}[/status|/stream|/cancel|/response]`).
REQUEST_PATH = re.compile(r"/requests/([0-9A-Za-z-]{8,64})(?:/[a-z]+)?$")


def _entry(exchange: Exchange) -> dict[str, Any]:
    seq, at, method, path, query, headers, body_sha256, body_size, status, request_id = exchange
    if request_id is None and (named := REQUEST_PATH.search(path)) is not None:
        request_id = named.group(1)  # an answer that carried no id (a gateway's 503): the request it was about
    return {
        "seq": seq,
        "at": isoformat(at),
        "kind": "http",
        "method": method,
        "path": path,
        "query": redact_query(query.decode("latin-1")),
        "headers": redact((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers),
        "body_sha256": body_sha256,
        "body_size": body_size,
        "status": status,
        "request_id": request_id,
    }


class Journal:
    def __init__(self, clock: Clock, max_entries: int = MAX_ENTRIES) -> None:
        self._clock = clock
        self._entries: deque[dict[str, Any] | Exchange] = deque(maxlen=max_entries)
        self._raw = 0  # entries still kept as an Exchange
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
        """Record an HTTP exchange: `query` and `headers` as ASGI gives them (latin-1 bytes), `status` 0 when no
        answer was sent. Its entry is made, and redacted, when the journal is next read."""
        self._seq += 1
        self._raw += 1
        at = self._clock.now()
        self._entries.append(
            (self._seq, at, method, path, query, tuple(headers), body_sha256, body_size, status, request_id)
        )

    def entries(self, filters: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Entries whose fields equal every given filter (values compared as strings)."""
        wanted = dict(filters or {})
        made = [entry if isinstance(entry, dict) else _entry(entry) for entry in self._entries]
        if self._raw:  # keep what was made: the next read finds it
            self._entries = deque(made, maxlen=self._entries.maxlen)
            self._raw = 0
        return [entry for entry in made if all(str(entry.get(k)) == v for k, v in wanted.items())]

    def clear(self) -> None:
        self._entries.clear()
        self._raw = 0
