"""Closed-loop HTTP load: wrk when it is installed, else a Python load generator (httpx + asyncio).

Both keep `connections` requests in flight for `seconds` and report requests/s, latency p50/p99, bytes
read and errors (transport errors plus answers with status >= 400). The two are not comparable with
each other: the Python generator is far slower than wrk and usually the bottleneck itself, so every
figure says which tool measured it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from perf.procs import cpu_seconds

WRK_INSTALL_HINT = "apt-get install -y wrk"


@dataclass(frozen=True)
class Load:
    """What every connection sends, again and again."""

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    seconds: float
    bytes_read: int
    errors: int
    p50_ms: float
    p99_ms: float
    server_cpu: float | None = None  # CPU seconds the server process used during the run (user + system)

    @property
    def cpu_us_per_request(self) -> float | None:
        """The server's CPU time per answered request, in microseconds: what a request costs the server, which
        load from other processes on the machine changes far less than it changes throughput."""
        if self.server_cpu is None or not self.requests:
            return None
        return self.server_cpu / self.requests * 1e6

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        """Megabytes (10^6 bytes) read per second, headers included."""
        return self.bytes_read / self.seconds / 1e6 if self.seconds > 0 else 0.0


class LoadTool(Protocol):
    name: str

    def run(self, load: Load, seconds: int, connections: int = 32) -> LoadResult: ...


def run_measured(tool: LoadTool, load: Load, seconds: int, pid: int | None) -> LoadResult:
    """`tool.run(load, seconds)`, with the CPU time server `pid` used meanwhile (`server_cpu`)."""
    before = cpu_seconds(pid) if pid else 0.0
    result = tool.run(load, seconds)
    if not pid:
        return result
    return dataclasses.replace(result, server_cpu=cpu_seconds(pid) - before)


def _lua_string(text: str) -> str:
    """`text` as a Lua long-bracket literal (no escaping inside)."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


# wrk calls done() once at the end with the merged statistics; latencies are in microseconds.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK-RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


class Wrk:
    """`wrk -t1 -cN -dSs --latency -s script.lua URL`; the Lua script sets the method, headers and body
    and prints exact totals (wrk's own summary rounds them)."""

    name = "wrk"

    def __init__(self, path: str) -> None:
        self.path = path

    def script(self, load: Load) -> str:
        lines = [f"wrk.method = {_lua_string(load.method)}"]
        if load.body is not None:
            lines.append(f"wrk.body = {_lua_string(load.body.decode())}")
        lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in load.headers.items()]
        return "\n".join(lines) + "\n" + WRK_DONE

    def run(self, load: Load, seconds: int, connections: int = 32) -> LoadResult:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
            script.write(self.script(load))
            script.flush()
            command = [
                self.path, "-t1", f"-c{connections}", f"-d{max(1, seconds)}s", "--latency", "--timeout", "5s",
                "-s", script.name, load.url,
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
        for line in reversed(done.stdout.splitlines()):
            if line.startswith("WRK-RESULT "):
                data = json.loads(line[len("WRK-RESULT ") :])
                return LoadResult(
                    tool=self.name,
                    requests=data["requests"],
                    seconds=data["duration_us"] / 1e6,
                    bytes_read=data["bytes"],
                    errors=data["errors"],
                    p50_ms=data["p50_us"] / 1000,
                    p99_ms=data["p99_us"] / 1000,
                )
        raise RuntimeError(f"wrk printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


class PythonLoad:
    """A stand-in for wrk: `connections` asyncio tasks on one httpx.AsyncClient, each sending the request
    again as soon as its answer is read. Body bytes only are counted as read."""

    name = "python (httpx+asyncio; not wrk)"

    def run(self, load: Load, seconds: int, connections: int = 32) -> LoadResult:
        return asyncio.run(self._run(load, seconds, connections))

    async def _run(self, load: Load, seconds: int, connections: int) -> LoadResult:
        latencies: list[float] = []
        counters = {"bytes": 0, "errors": 0}
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            # One client (one connection) per task: a shared httpx pool slows down as tasks are added.
            async with httpx.AsyncClient(timeout=5.0) as client:
                while time.perf_counter() < deadline:
                    sent = time.perf_counter()
                    try:
                        answer = await client.request(
                            load.method, load.url, headers=dict(load.headers), content=load.body
                        )
                    except httpx.HTTPError:
                        counters["errors"] += 1
                        continue
                    latencies.append(time.perf_counter() - sent)
                    counters["bytes"] += len(answer.content)
                    if answer.status_code >= 400:
                        counters["errors"] += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
        latencies.sort()
        return LoadResult(
            tool=self.name,
            requests=len(latencies),
            seconds=elapsed,
            bytes_read=counters["bytes"],
            errors=counters["errors"],
            p50_ms=percentile(latencies, 0.50) * 1000,
            p99_ms=percentile(latencies, 0.99) * 1000,
        )


def load_tool(prefer: str = "auto") -> LoadTool:
    """wrk if installed (or asked for), else the Python generator with a note on how to get wrk."""
    path = shutil.which("wrk")
    if prefer != "python" and path:
        return Wrk(path)
    if prefer == "wrk":
        raise SystemExit(f"wrk is not installed: {WRK_INSTALL_HINT}")
    if prefer == "auto":
        print(f"note: wrk not found, using the Python load generator (slower than wrk). Install: {WRK_INSTALL_HINT}")
    return PythonLoad()
