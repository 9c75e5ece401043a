"""What one request costs the application alone: the emulator's ASGI app and the bare baseline app, called in
process with no server, no socket and no load generator, so that other processes on the machine barely move
the figures.

    .venv/bin/python benchmarks/asgi_cost.py                 # µs of CPU per call: status, submit, baseline
    .venv/bin/python benchmarks/asgi_cost.py --profile status  # and cProfile's top functions for one route

Each route is called `--calls` times on one event loop (the loop `fal-emulator serve` runs); a call is the
ASGI app awaited with an `http` scope as uvicorn builds it, a `receive` that hands over the body and a `send`
that drops the messages. The figure is the process's CPU time per call (best of `--repeat` runs). What the
server adds on top (HTTP parsing, the event loop, the socket writes) is the same for every app and is in
`run.py`'s figures, not here.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import baseline_app
import orjson
from perf.drivers import AUTH, ENDPOINT, SEED_BYTES

from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings


def scope(method: str, path: str, headers: dict[str, str], query: bytes = b"") -> dict[str, Any]:
    """An `http` scope as uvicorn's httptools protocol makes it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8470),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(b"host", b"127.0.0.1:8470"), *((k.lower().encode(), v.encode()) for k, v in headers.items())],
        "state": {},
    }


class Call:
    """One request, sent again and again; keeps the last answer's status and body."""

    def __init__(self, app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> None:
        self.app, self.scope, self.body = app, scope(method, path, headers), body
        self.status, self.answer = 0, b""

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.answer = message.get("body", b"")

    async def once(self) -> None:
        await self.app(dict(self.scope), self.receive, self.send)

    def fresh_scope(self) -> dict[str, Any]:
        """The scope with new header objects, as a server makes for each request (what the app keeps of them
        then costs what it costs in a server)."""
        headers = [(bytes(bytearray(name)), bytes(bytearray(value))) for name, value in self.scope["headers"]]
        return {**self.scope, "headers": headers}

    async def many(self, calls: int) -> float:
        """CPU seconds per call over `calls` calls (the scopes are made before the clock starts)."""
        scopes = [self.fresh_scope() for _ in range(calls)]
        started = time.process_time()
        for scope in scopes:
            await self.app(scope, self.receive, self.send)
        return (time.process_time() - started) / calls


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def calls(state_dir: Path) -> dict[str, Call]:
    settings = Settings(state_dir=state_dir, policy="instant", seed=1)
    app = create_app(settings)
    submit = Call(app, "POST", f"/{ENDPOINT}", {**AUTH, "content-type": "application/json"}, SEED_BYTES)
    await submit.once()
    if submit.status != 200:
        raise SystemExit(f"submit answered {submit.status}: {submit.answer[:300]!r}")
    request_id = orjson.loads(submit.answer)["request_id"]
    return {
        "baseline status": Call(baseline_app.app, "GET", "/status", AUTH),
        "status": Call(app, "GET", f"/fal-ai/veo3/requests/{request_id}/status", AUTH),
        "submit": Call(app, "POST", f"/{ENDPOINT}", {**AUTH, "content-type": "application/json"}, SEED_BYTES),
        "result": Call(app, "GET", f"/fal-ai/veo3/requests/{request_id}", AUTH),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", help="profile this route (status, submit, result, 'baseline status')")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    loop = new_loop()
    with tempfile.TemporaryDirectory(prefix="fal-asgi-cost-") as tmp:
        routes = loop.run_until_complete(calls(Path(tmp)))
        base = None
        for name, call in routes.items():
            loop.run_until_complete(call.many(200))  # warm up
            best = min(loop.run_until_complete(call.many(args.calls)) for _ in range(args.repeat))
            base = base or best
            print(f"{name:>16}: {best * 1e6:7.1f} µs CPU per call ({best / base:.2f}× the baseline's status)")
        if args.profile:
            call = routes[args.profile]
            profiler = cProfile.Profile()
            profiler.enable()
            loop.run_until_complete(call.many(args.calls))
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
            print(out.getvalue())
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
