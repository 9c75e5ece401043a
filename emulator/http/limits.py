"""The edge: the input-limits policy (`fal_emulator.limits`) applied to every request before a route sees it.

`LimitsMiddleware` is the outermost layer of the app:

- `Host` must be `host[:port]` (it is echoed in every `status_url` and stored with the request), else
  400 `bad_request`;
- `x-fal-target-url` (@fal-ai/client's proxy mode) must be an http(s) URL, else 400 `bad_request`;
- a declared `Content-Length` over `max_body_bytes` is answered 413 at once, unread;
- the body is counted as it streams in: past `max_body_bytes` the route's read raises `BodyTooLarge`
  (413), so no more than the limit is ever held;
- a body that stalls for `read_timeout` seconds, or is not complete within `BODY_DEADLINE_FACTOR` times
  that, raises `BodyTimeout` (408).

These answers are fal's request-error shape (`{"detail", "error_type": "bad_request"}` with
`X-Fal-Error-Type`; fal documents no body for 408/413) and carry `Connection: close`: the rest of the
body is never read. The request head's own deadline is the server's (`fal_emulator.connections`).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fal_emulator.errors import RequestError
from fal_emulator.limits import authority_problem, url_problem
from fal_emulator.service import Emulator

BODY_DEADLINE_FACTOR = 4  # a whole body must arrive within this many read timeouts
TARGET_HEADER = b"x-fal-target-url"


class BodyTooLarge(RequestError):
    """413: the request body is over the `max_body_bytes` setting."""

    def __init__(self, limit: int) -> None:
        detail = f"Request body is too large: the limit is {limit} bytes (the max_body_bytes setting)"
        super().__init__("bad_request", detail, 413, headers={"Connection": "close"})


class BodyTimeout(RequestError):
    """408: the request body stalled for longer than the `read_timeout` setting."""

    def __init__(self, seconds: float) -> None:
        detail = f"Request body timed out: no complete body within {seconds:g} s (the read_timeout setting)"
        super().__init__("bad_request", detail, 408, headers={"Connection": "close"})


def bad_header(name: str, problem: str) -> RequestError:
    return RequestError("bad_request", f"Invalid {name} header: {problem}", 400)


if sys.version_info >= (3, 11):

    async def _within(seconds: float, receive: Callable[[], Awaitable[Message]]) -> Message:
        async with asyncio.timeout(seconds):
            return await receive()

else:  # pragma: no cover - Python 3.10

    async def _within(seconds: float, receive: Callable[[], Awaitable[Message]]) -> Message:
        return await asyncio.wait_for(receive(), seconds)


class LimitedBody:
    """A `receive` that counts body bytes and times the body; after the last chunk it waits unbounded
    (a streamed answer waits on `receive` for the client's disconnect)."""

    def __init__(self, receive: Receive, limit: int, timeout: float) -> None:
        self._receive = receive
        self._limit = limit
        self._timeout = timeout
        self._deadline = time.monotonic() + BODY_DEADLINE_FACTOR * timeout
        self._size = 0
        self._done = False

    async def __call__(self) -> Message:
        if self._done:
            return await self._receive()
        remaining = min(self._timeout, self._deadline - time.monotonic())
        try:
            message = await _within(max(remaining, 0.0), self._receive)
        except asyncio.TimeoutError:
            raise BodyTimeout(self._timeout) from None
        if message["type"] != "http.request":
            self._done = True
            return message
        self._size += len(message.get("body", b""))
        if self._size > self._limit:
            raise BodyTooLarge(self._limit)
        self._done = not message.get("more_body", False)
        return message


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    def _check_head(self, scope: Scope) -> RequestError | None:
        limit = self.emulator.settings.max_body_bytes
        for name, raw in scope.get("headers", []):
            if name == b"host":
                problem = authority_problem(raw.decode("latin-1"))
                if problem:
                    return bad_header("Host", problem)
            elif name == TARGET_HEADER:
                problem = url_problem(raw.decode("latin-1"))
                if problem:
                    return bad_header("x-fal-target-url", problem)
            elif name == b"content-length" and raw.isdigit() and (len(raw) > 18 or int(raw) > limit):
                return BodyTooLarge(limit)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = self._check_head(scope)
        if error is not None:
            headers = {**error.headers, "x-fal-request-id": self.emulator.answer_ids.new()}
            await JSONResponse(error.body, error.status_code, headers=headers)(scope, receive, send)
            return
        settings = self.emulator.settings
        await self.app(scope, LimitedBody(receive, settings.max_body_bytes, settings.read_timeout), send)
