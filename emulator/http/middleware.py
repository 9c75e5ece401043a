"""ASGI middleware, outermost first: proxy routing, the journal, transport faults, request ids.

- `ProxyMiddleware`: @fal-ai/client's `proxyUrl` mode sends every call to one URL with the real target
  in `x-fal-target-url` (fal-js `middleware.js`); the request is routed as if sent to that target
  (`fal.run` targets go to the `/run/` prefix).
- `JournalMiddleware`: records every exchange (not the control plane) in `Emulator.journal`.
- `FaultMiddleware`: the `X-Fal-Emulator-Scenario` header's `latency:…` (delay the answer, seeded
  draws) and `drop` (close the connection before a complete answer).
- `RequestIdMiddleware`: every answer carries `x-fal-request-id`, except gateway errors, which must not.
"""

from __future__ import annotations

import asyncio
import hashlib
import urllib.parse

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fal_emulator.http.rendering import CONTROL_PREFIX, NO_REQUEST_ID, REQUEST_ID_HEADER
from fal_emulator.journal import redact
from fal_emulator.scenarios import HEADER as SCENARIO_HEADER, ScenarioError, parse_scenario
from fal_emulator.service import Emulator

TARGET_HEADER = b"x-fal-target-url"
RUN_HOSTS = {"fal.run", "falrun.com"}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class ProxyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = _header(scope, TARGET_HEADER) if scope["type"] == "http" else None
        if target:
            url = urllib.parse.urlsplit(target)
            path = f"/run{url.path}" if url.hostname in RUN_HOSTS else url.path
            scope = {**scope, "path": path, "raw_path": path.encode(), "query_string": url.query.encode()}
        await self.app(scope, receive, send)


class JournalMiddleware:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        digest, size, answer = hashlib.sha256(), 0, {"status": 0, "request_id": None}

        async def receive_and_hash() -> Message:
            nonlocal size
            message = await receive()
            chunk = message.get("body", b"")
            digest.update(chunk)
            size += len(chunk)
            return message

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == REQUEST_ID_HEADER.encode():
                        answer["request_id"] = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive_and_hash, send_and_note)
        finally:
            self.emulator.journal.record(
                "http",
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=redact((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])),
                body_sha256=digest.hexdigest(),
                body_size=size,
                status=answer["status"],
                request_id=answer["request_id"],
            )


class FaultMiddleware:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        text = _header(scope, SCENARIO_HEADER.encode()) if scope["type"] == "http" else None
        if not text:
            await self.app(scope, receive, send)
            return
        try:
            scenario = parse_scenario(text)
        except ScenarioError:  # the route answers 400 for it
            await self.app(scope, receive, send)
            return
        if scenario.latency is not None:
            await asyncio.sleep(scenario.latency.sample(self.emulator.random))
        if "drop" in scenario.faults:
            await drop(send)
            return
        await self.app(scope, receive, send)


async def drop(send: Send) -> None:
    """Promise a body, send none and end: the server closes the connection mid-answer."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1024")]})


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if NO_REQUEST_ID.encode() in names:
                    headers = [(name, value) for name, value in headers if name.lower() != NO_REQUEST_ID.encode()]
                elif REQUEST_ID_HEADER.encode() not in names:
                    headers.append((REQUEST_ID_HEADER.encode(), self.emulator.answer_ids.new().encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
