"""Shared by the kit's tests: the seed and endpoint they use, and a loopback stand-in for real fal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fal_emulator.contracts.loopback import LoopbackServer
from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings

SEED = 20261121
ENDPOINT = "fal-ai/veo3.1/fast"  # every option: resolutions up to 4k, three durations, audio or not


@dataclass
class Generations:
    """The inputs of every request the stand-in accepted for generation (a 200 submit or run)."""

    inputs: list[dict[str, Any]] = field(default_factory=list)


def as_real_fal(app: ASGIApp, generations: Generations) -> ASGIApp:
    """The emulator as real fal looks to the kit: no `/_emulator/` control plane (404), and every accepted
    generation recorded."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = str(scope["path"])
        if path.startswith("/_emulator/"):
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"Not Found"})
            return
        body = bytearray()

        async def remember(message: Message) -> Message:
            body.extend(message.get("body", b""))
            return message

        async def read() -> Message:
            return await remember(await receive())

        async def watch(message: Message) -> None:
            generating = scope["method"] == "POST" and "/requests/" not in path
            if message["type"] == "http.response.start" and generating and message["status"] == 200:
                generations.inputs.append(json.loads(bytes(body) or b"null"))
            await send(message)

        await app(scope, read, watch)

    return wrapped


@pytest.fixture
def fake_fal() -> Iterator[tuple[str, Generations]]:
    """A loopback stand-in for real fal (base URL, generations); never the network."""
    generations = Generations()
    server = LoopbackServer(as_real_fal(create_app(Settings(policy="polls:1", seed=SEED)), generations))
    base_url = server.start()
    try:
        yield base_url, generations
    finally:
        server.stop()
