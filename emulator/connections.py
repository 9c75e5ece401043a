"""Connection limits for the server (`fal-emulator serve`): uvicorn's Config options in one place.

What bounds a connection:

- an idle keep-alive connection is closed `KEEP_ALIVE` seconds after its last answer (uvicorn's
  `timeout_keep_alive`);
- a request head (request line and headers) may be at most `MAX_HEAD_BYTES` (h11's
  `max_incomplete_event_size`; uvicorn answers a larger one 400);
- a request head must be complete `read_timeout` seconds after its first byte (after the connection
  opened, for the first request), else the connection is closed: `HeadDeadline`. uvicorn has no such
  timeout, so a slowloris client that trickles header lines would keep its connection for ever;
- a request body may stall at most `read_timeout` seconds (the app's edge, `fal_emulator.http.limits`);
- at most `max_connections` connections per listener (uvicorn's `limit_concurrency`): beyond that,
  uvicorn answers 503 (text/plain) until some close.

`uvicorn --factory fal_emulator.http.app:create_app` runs without `HeadDeadline` (pass these options to
uvicorn yourself); the body limits and timeouts are the app's and hold there too.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any, ClassVar, cast

from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from fal_emulator.settings import Settings

KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open after an answer
MAX_HEAD_BYTES = 16 * 1024  # bytes of a request head (fal caps response headers at 16 KB too)
HEAD_END = b"\r\n\r\n"


class _WatchedTransport:
    """The connection's transport as uvicorn's protocol sees it: every write is noted (an answer began)."""

    def __init__(self, transport: asyncio.Transport, owner: HeadDeadline) -> None:
        self._transport = transport
        self._owner = owner

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._owner.wrote(bytes(data[:10]))
        self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadDeadline(asyncio.Protocol):
    """uvicorn's HTTP protocol (`--http auto`), plus a deadline on each request head.

    A head is the bytes up to the first blank line (CRLF CRLF); one starts when the connection opens and
    again with the first byte received after the server began an answer (an interim `100 Continue` aside).
    """

    timeout: ClassVar[float] = 30.0  # seconds; set per server by `uvicorn_options`

    def __init__(self, **kwargs: Any) -> None:
        self._inner: asyncio.Protocol = AutoHTTPProtocol(**kwargs)
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._in_head = True
        self._answered = False
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport quacks like asyncio.Transport without subclassing it
        self._transport = cast(asyncio.Transport, transport)
        self._arm()
        self._inner.connection_made(_WatchedTransport(self._transport, self))  # type: ignore[arg-type]

    def _arm(self) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(self.timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()  # the protocol hears connection_lost

    def wrote(self, start: bytes) -> None:
        interim = start[:5] == b"HTTP/" and start[9:10] == b"1"
        if not interim and not self._in_head:
            self._answered = True

    def data_received(self, data: bytes) -> None:
        if not self._in_head and self._answered:  # the next request on a kept-alive connection
            self._in_head, self._answered, self._tail = True, False, b""
            self._arm()
        if self._in_head:
            seen = self._tail + data
            if HEAD_END in seen:
                self._in_head = False
                self._disarm()
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def log_config(log_level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, plus the `fal_emulator` loggers (webhook failures, disconnects)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["fal_emulator"] = {"handlers": ["default"], "level": log_level.upper(), "propagate": False}
    return config


def uvicorn_options(settings: Settings, log_level: str = "info") -> dict[str, Any]:
    """The `uvicorn.Config` keyword arguments that bound connections (see the module docstring)."""
    deadline = type("HeadDeadline", (HeadDeadline,), {"timeout": settings.read_timeout})
    return {
        "http": deadline,
        "timeout_keep_alive": KEEP_ALIVE,
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "log_level": log_level,
        "log_config": log_config(log_level),
    }
