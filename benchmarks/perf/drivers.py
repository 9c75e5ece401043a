"""Client drivers written with asyncio + httpx: lifecycles, filling the store, concurrent SSE streams.

Every loop is bounded by a count and by a deadline, and every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from fal_emulator.catalog import load_catalog
from perf.load import percentile
from perf.procs import cpu_seconds, rss_kb
from perf.rawhttp import send_many

ENDPOINT = "fal-ai/veo3/image-to-video"
AUTH = {"Authorization": "Key fal-emulator-bench"}
SCENARIO_HEADER = "X-Fal-Emulator-Scenario"
# The seed request of fal-ai/veo3/image-to-video, as its OpenAPI document gives it.
SEED_BODY: dict[str, Any] = dict(load_catalog().get(ENDPOINT).example_input)  # type: ignore[union-attr]
SEED_BYTES = json.dumps(SEED_BODY).encode()
JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}
MAX_POLLS = 100  # status polls one lifecycle may make before it counts as an error


class BenchError(RuntimeError):
    """An answer the benchmark cannot go on without (e.g. a submit that is not 200)."""


@dataclass(frozen=True)
class CycleResult:
    cycles: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds > 0 else 0.0


_TLS = ssl.create_default_context()  # shared: httpx builds a new (slow) SSL context per client otherwise


def _client(connections: int, *, read_timeout: float | None = 10.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(10.0, read=read_timeout), verify=_TLS)


async def _cycles(one: Callable[[httpx.AsyncClient], Awaitable[bool]], seconds: float, concurrency: int) -> CycleResult:
    """Run `one` again and again in `concurrency` tasks for `seconds`. Each task has its own client and
    connection: one httpx pool shared by many tasks gets slower as tasks are added."""
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        nonlocal errors
        async with _client(1) as client:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    ok = await one(client)
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - began)
                else:
                    errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return CycleResult(
        len(latencies), elapsed, errors, percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    )


def lifecycles(
    base_url: str,
    seconds: float,
    concurrency: int = 16,
    *,
    submit_path: str = f"/{ENDPOINT}",
    headers: dict[str, str] | None = None,
    rebase: Callable[[str], str] | None = None,
) -> CycleResult:
    """Full lifecycles per second: submit → poll status until COMPLETED → result (a 200 with a video).

    `headers` go with every call (besides the auth and JSON ones); `rebase` maps the URLs a submit answers
    with to ones this client can reach (a peer answering with fal's own hostnames).
    """
    get_headers = {**AUTH, **(headers or {})}
    post_headers = {**JSON_HEADERS, **(headers or {})}
    to_reach = rebase or (lambda url: url)

    async def one(client: httpx.AsyncClient) -> bool:
        submitted = await client.post(f"{base_url}{submit_path}", content=SEED_BYTES, headers=post_headers)
        if submitted.status_code != 200:
            return False
        urls = submitted.json()
        status_url = to_reach(urls.get("status_url") or f"{urls['response_url']}/status")
        for _ in range(MAX_POLLS):
            status = await client.get(status_url, headers=get_headers)
            if status.status_code not in (200, 202):
                return False
            if status.json()["status"] == "COMPLETED":
                break
        else:
            return False
        result = await client.get(to_reach(urls["response_url"]), headers=get_headers)
        return result.status_code == 200 and "video" in result.json()

    return asyncio.run(_cycles(one, seconds, concurrency))


def baseline_cycles(base_url: str, seconds: float, concurrency: int = 16) -> CycleResult:
    """The same driver on the baseline: three GETs of its status route (and their JSON decoded) per cycle."""

    async def one(client: httpx.AsyncClient) -> bool:
        for _ in range(3):
            answer = await client.get(f"{base_url}/status", headers=AUTH)
            if answer.status_code != 202 or "status" not in answer.json():
                return False
        return True

    return asyncio.run(_cycles(one, seconds, concurrency))


# -- filling the store ----------------------------------------------------------------------------


async def _submit(client: httpx.AsyncClient, base_url: str, scenario: str | None) -> dict[str, Any]:
    headers = {**JSON_HEADERS, SCENARIO_HEADER: scenario} if scenario else JSON_HEADERS
    answer = await client.post(f"{base_url}/{ENDPOINT}", content=SEED_BYTES, headers=headers)
    if answer.status_code != 200:
        raise BenchError(f"submit answered {answer.status_code}: {answer.text[:300]}")
    body: dict[str, Any] = answer.json()
    return body


async def _submit_many(base_url: str, count: int, scenario: str | None, *, keep: bool = True) -> list[dict[str, Any]]:
    headers = {**JSON_HEADERS, SCENARIO_HEADER: scenario} if scenario else JSON_HEADERS
    return await send_many(base_url, "POST", f"/{ENDPOINT}", headers, SEED_BYTES, count, keep=keep)


@dataclass(frozen=True)
class Filled:
    """The store after a fill: the last request submitted (the largest queue position) and the time taken."""

    last: dict[str, Any]
    added: int
    seconds: float

    @property
    def queued(self) -> int:
        """Requests waiting in the queue of the app, the last one included (its position counts those before it)."""
        return int(self.last["queue_position"]) + 1


def fill(base_url: str, count: int, *, timeout: float = 600.0) -> Filled:
    """Submit `count` requests that stay IN_QUEUE (scenario `manual`), the last one alone after the others."""

    async def go() -> Filled:
        start = time.perf_counter()
        await asyncio.wait_for(_submit_many(base_url, count - 1, "manual", keep=False), timeout)
        async with _client(1) as client:
            last = await _submit(client, base_url, "manual")
        return Filled(last, count, time.perf_counter() - start)

    return asyncio.run(go())


def submit_once(base_url: str, scenario: str | None = None) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with _client(1) as client:
            return await _submit(client, base_url, scenario)

    return asyncio.run(go())


def submit_seed(url: str, headers: dict[str, str]) -> dict[str, Any]:
    """POST the seed body to `url` (a peer's submit route) with `headers`; its JSON answer. Raises BenchError."""
    answer = httpx.post(url, content=SEED_BYTES, headers={**JSON_HEADERS, **headers}, timeout=60.0)
    if answer.status_code != 200:
        raise BenchError(f"submit to {url} answered {answer.status_code}: {answer.text[:300]}")
    body: dict[str, Any] = answer.json()
    return body


def control(base_url: str, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    """One control-plane call (`/_emulator/...`); raises BenchError unless it answers 2xx."""
    answer = httpx.request(method, f"{base_url}/_emulator/{path}", json=payload, timeout=60.0)
    if answer.status_code >= 300:
        raise BenchError(f"{method} /_emulator/{path} answered {answer.status_code}: {answer.text[:300]}")
    return answer.json() if answer.content else None


# -- SSE streams ----------------------------------------------------------------------------------


@dataclass
class SseResult:
    streams: int
    opened: int = 0
    completed: int = 0  # ended cleanly (end of stream) with a COMPLETED event last
    errors: dict[str, int] = field(default_factory=dict)  # what went wrong -> how many streams
    open_seconds: float = 0.0  # from the first connect to every stream having its first event
    close_seconds: float = 0.0  # from the first complete call to every stream having ended
    rss_per_stream_kb: float | None = None
    hold_seconds: float = 0.0  # how long all streams were held open before the completes
    hold_cpu: float | None = None  # the server's CPU use while it held them (1.0 = one core busy)

    def error(self, what: str, count: int = 1) -> None:
        self.errors[what] = self.errors.get(what, 0) + count

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class _Stream:
    url: str
    opened: bool = False  # its first event arrived
    outcome: str | None = None  # 'ok' when it ended with a COMPLETED event, else what went wrong


async def _read_stream(stream: _Stream, timeout: float) -> None:
    """Read one SSE status stream to its end, on a client (and connection) of its own; note how it ended."""
    last: str | None = None
    try:
        async with _client(1, read_timeout=timeout) as client, client.stream("GET", stream.url, headers=AUTH) as answer:
            if answer.status_code != 200:
                stream.outcome = f"http {answer.status_code}"
                return
            async for line in answer.aiter_lines():
                if line.startswith("data:"):
                    last = json.loads(line[len("data:") :])["status"]
                    stream.opened = True
        stream.outcome = "ok" if last == "COMPLETED" else f"ended at {last}"
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        stream.outcome = type(exc).__name__


async def _until(condition: Callable[[], bool], timeout: float) -> bool:
    """Wait (checking every 20 ms) until `condition()` holds; False if it did not within `timeout` s."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def sse_streams(
    base_url: str, count: int, *, pid: int | None = None, hold: float = 3.0, timeout: float = 120.0
) -> SseResult:
    """Hold `count` status streams of `manual` requests open, complete the requests, count clean ends.

    Every stream must deliver its first event (IN_QUEUE) before any request is completed; all are held open
    `hold` seconds (the server's CPU use meanwhile is noted), then every request
    is completed through the control plane (`POST /_emulator/requests/{id}/complete`) and each stream must
    end with a COMPLETED event.
    """
    result = SseResult(count)

    async def go() -> None:
        submitted = await asyncio.wait_for(_submit_many(base_url, count, "manual"), timeout)
        before = rss_kb(pid) if pid else 0
        streams = [_Stream(body["status_url"] + "/stream") for body in submitted]
        start = time.perf_counter()
        tasks = [asyncio.create_task(_read_stream(stream, timeout)) for stream in streams]
        if not await _until(lambda: all(s.opened or s.outcome for s in streams), timeout):
            result.error("not open in time", sum(1 for s in streams if not (s.opened or s.outcome)))
        result.open_seconds = time.perf_counter() - start
        result.opened = sum(1 for s in streams if s.opened)
        if pid and result.opened:
            result.rss_per_stream_kb = (rss_kb(pid) - before) / result.opened
        cpu_before, held = cpu_seconds(pid) if pid else 0.0, time.perf_counter()
        await asyncio.sleep(hold)
        result.hold_seconds = time.perf_counter() - held
        if pid:
            result.hold_cpu = (cpu_seconds(pid) - cpu_before) / result.hold_seconds

        completing = time.perf_counter()
        pending = [body["request_id"] for body in submitted]

        async def complete() -> None:
            async with _client(1) as client:
                while pending:
                    request_id = pending.pop()
                    try:
                        answer = await client.post(f"{base_url}/_emulator/requests/{request_id}/complete")
                    except httpx.HTTPError as exc:
                        result.error(f"complete: {type(exc).__name__}")
                        continue
                    if answer.status_code >= 300:
                        result.error(f"complete answered {answer.status_code}")

        try:
            await asyncio.wait_for(asyncio.gather(*(complete() for _ in range(8))), timeout)
        except asyncio.TimeoutError:
            result.error("completes not done in time")
        await _until(lambda: all(task.done() for task in tasks), timeout)
        result.close_seconds = time.perf_counter() - completing
        for task, stream in zip(tasks, streams, strict=True):
            if not task.done():
                task.cancel()
                result.error("still open at timeout")
            elif stream.outcome == "ok":
                result.completed += 1
            else:
                result.error(stream.outcome or "no outcome")
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(go())
    return result


def get_many(url: str, count: int) -> None:
    """GET `url` `count` times as fast as the server answers (warming up, filling the journal)."""
    parts = urllib.parse.urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    asyncio.run(send_many(base, "GET", parts.path, AUTH, b"", count, keep=False))
