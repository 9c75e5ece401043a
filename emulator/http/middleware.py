"""The edge of every exchange: one pure ASGI middleware, so that each request pays for one layer.

In order, for each HTTP request:

- proxy routing: @fal-ai/client's `proxyUrl` mode sends every call to one URL with the real target in
  `x-fal-target-url` (fal-js `middleware.js`); the request is routed as if sent to that target (`fal.run`
  targets go to the `/run/` prefix);
- the journal: every exchange (not the control plane) is recorded in `Emulator.journal`, with a SHA-256 of
  the request body, the answer's status and its `x-fal-request-id`;
- transport faults: the `X-Fal-Emulator-Scenario` header's `latency:…` (delay the answer, seeded draws) and
  `drop` (close the connection before a complete answer);
- request ids: every answer carries `x-fal-request-id`, except gateway errors, which must not (they mark
  themselves with the internal `x-emulator-no-request-id` header, removed here).

A `shortcut` may answer a call itself, inside the journal, before the app: `create_app` gives one for plain
status polls (the call clients make most), which answers them as the status route does without building a
Starlette request and response (`queue_routes.plain_status`).
"""

from __future__ import annotations

import asyncio
import hashlib
import urllib.parse
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fal_emulator.http.rendering import CONTROL_PREFIX, NO_REQUEST_ID, REQUEST_ID_HEADER
from fal_emulator.scenarios import HEADER as SCENARIO_HEADER, ScenarioError, parse_scenario
from fal_emulator.service import Emulator

TARGET_HEADER = b"x-fal-target-url"
SCENARIO = SCENARIO_HEADER.lower().encode()
REQUEST_ID = REQUEST_ID_HEADER.encode()
NO_ID = NO_REQUEST_ID.encode()
RUN_HOSTS = {"fal.run", "falrun.com"}
EMPTY_SHA256 = hashlib.sha256().hexdigest()
JSON_TYPE = (b"content-type", b"application/json")
# A call answered without the app: (status code, JSON body, request id); None: the app answers.
Shortcut = Callable[[Scope], "tuple[int, bytes, str] | None"]


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, emulator: Emulator, shortcut: Shortcut | None = None) -> None:
        self.app = app
        self.emulator = emulator
        self.shortcut = shortcut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = scenario = None  # the first of each header (ASGI header names are lower-case)
        for name, value in scope["headers"]:
            if name == TARGET_HEADER:
                target = target or value.decode("latin-1")
            elif name == SCENARIO:
                scenario = scenario or value.decode("latin-1")
        if target:
            scope = routed_to(scope, target)
        if scope["path"].startswith(CONTROL_PREFIX):
            await self._answer(scope, receive, send, scenario)
            return

        digest, size, status, request_id = None, 0, 0, None

        async def receive_and_hash() -> Message:
            nonlocal digest, size
            message = await receive()
            chunk = message.get("body", b"")
            if chunk:
                digest = digest or hashlib.sha256()
                digest.update(chunk)
                size += len(chunk)
            return message

        async def send_and_note(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == REQUEST_ID:
                        request_id = value.decode("latin-1")
            await send(message)

        try:
            answer = self.shortcut(scope) if self.shortcut is not None and not scenario else None
            if answer is None:
                await self._answer(scope, receive_and_hash, send_and_note, scenario)
            else:  # headers as the route's FalJSONResponse orders them
                code, body, answer_id = answer
                headers = [(REQUEST_ID, answer_id.encode()), (b"content-length", b"%d" % len(body)), JSON_TYPE]
                await send_and_note({"type": "http.response.start", "status": code, "headers": headers})
                await send_and_note({"type": "http.response.body", "body": body})
        finally:
            self.emulator.journal.record_exchange(
                scope["method"],
                scope["path"],
                scope.get("query_string", b""),
                scope["headers"],
                digest.hexdigest() if digest else EMPTY_SHA256,
                size,
                status,
                request_id,
            )

    async def _answer(self, scope: Scope, receive: Receive, send: Send, scenario: str | None) -> None:
        """The scenario header's transport faults, then the app, whose answer gets an `x-fal-request-id`."""
        if scenario:
            try:
                parsed = parse_scenario(scenario)
            except ScenarioError:  # the route answers 400 for it
                parsed = None
            if parsed is not None and parsed.latency is not None:
                await asyncio.sleep(parsed.latency.sample(self.emulator.random))
            if parsed is not None and "drop" in parsed.faults:
                await drop(send)
                return
        answer_ids = self.emulator.answer_ids

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                names = [name for name, _ in headers]
                if NO_ID in names:
                    headers = [(name, value) for name, value in headers if name != NO_ID]
                    message = {**message, "headers": headers}
                elif REQUEST_ID not in names:
                    message = {**message, "headers": [*headers, (REQUEST_ID, answer_ids.new().encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def routed_to(scope: Scope, target: str) -> Scope:
    """The scope of a call routed as if sent to `target` (an `x-fal-target-url`): its path and query (`fal.run`
    targets under `/run/`)."""
    url = urllib.parse.urlsplit(target)
    path = f"/run{url.path}" if url.hostname in RUN_HOSTS else url.path
    return {**scope, "path": path, "raw_path": path.encode(), "query_string": url.query.encode()}


class ProxyMiddleware:
    """The proxy routing alone, for an app without the rest of the edge (`fal-emulator record`'s)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = next((value.decode("latin-1") for name, value in scope["headers"] if name == TARGET_HEADER), None)
            if target:
                scope = routed_to(scope, target)
        await self.app(scope, receive, send)


async def drop(send: Send) -> None:
    """Promise a body, send none and end: the server closes the connection mid-answer."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1024")]})
