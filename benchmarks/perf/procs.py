"""The servers under test, each in its own process on 127.0.0.1 and a free port, stopped on exit.

- `baseline`: the bare Starlette app of `benchmarks/baseline_app.py` under the stock uvicorn CLI
  (`uvicorn baseline_app:app`: httptools + uvloop when installed), the practical limit;
- `baseline_as_emulator`: the same app started the way `fal-emulator serve` starts (`baseline_app.py`'s own
  `main`: a pre-bound socket, `uvicorn.Server.serve` on the loop the emulator's CLI makes);
- `emulator`: `fal-emulator serve` through `fal_emulator.testing.EmulatorProcess` (free ports, its ready line);
- `prism`: `prism mock` of the same OpenAPI document, installed under `benchmarks/.prism` by npm;
- `redis_server`: Debian's `redis-server` for the Redis store (no persistence), one database per emulator.
- `aimock`: `@copilotkit/aimock`'s `llmock` server with one fal fixture, installed under `benchmarks/.aimock`.

Every start is timed from just before the process is spawned to its ready line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from fal_emulator.testing import EmulatorProcess

BENCHMARKS = Path(__file__).resolve().parent.parent
ROOT = BENCHMARKS.parent
PRISM_VERSION = "5.16.0"
PRISM_DIR = BENCHMARKS / ".prism"
AIMOCK_VERSION = "1.43.0"
AIMOCK_DIR = BENCHMARKS / ".aimock"
START_TIMEOUT = 60.0  # seconds a server may take to print its ready line


def rss_kb(pid: int) -> int:
    """Resident set size of process `pid` in KiB (`VmRSS` in /proc/<pid>/status); 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process `pid` has used so far (/proc/<pid>/stat); 0.0 when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Running:
    """A started server: where it answers, its process id and how long it took to be ready."""

    base_url: str
    pid: int
    ready_seconds: float


class ServerProcess:
    """A command whose output goes to a log file, ready once `parse_ready` finds (url, pid) in a line.

    Runs in its own process group, so `stop()` (SIGTERM, then SIGKILL after 10 s) ends it and its children.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        log: Path,
        parse_ready: Callable[[str], tuple[str, int | None] | None],
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.name, self.argv, self.log, self.parse_ready, self.env = name, argv, log, parse_ready, env
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Running:
        with self.log.open("wb") as out:
            started = time.perf_counter()
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, start_new_session=True
            )
        deadline = started + START_TIMEOUT
        seen = 0
        while time.perf_counter() < deadline:
            text = self.log.read_text(errors="replace")
            lines = text.splitlines()
            for line in lines[seen:]:
                found = self.parse_ready(line)
                if found is not None:
                    url, pid = found
                    return Running(url, pid or self.process.pid, time.perf_counter() - started)
            seen = max(0, len(lines) - 1)  # the last line may still be growing
            if self.process.poll() is not None:
                break
            time.sleep(0.002)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready within {START_TIMEOUT:.0f} s:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


UVICORN_READY = re.compile(r"Uvicorn running on (http://\S+)")


def baseline(log: Path) -> ServerProcess:
    """`uvicorn baseline_app:app --host 127.0.0.1 --port 0 --no-access-log`, run from `benchmarks/`.

    The stock CLI as a user runs it; the port and the access log are the only flags (the emulator runs with
    `--log-level warning` here, which writes no access log either). Ready at uvicorn's "running on" line.
    """

    def ready(line: str) -> tuple[str, int | None] | None:
        found = UVICORN_READY.search(line)
        return (found.group(1), None) if found else None

    script = Path(sys.executable).with_name("uvicorn")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "uvicorn"]
    argv = [*command, "baseline_app:app", "--host", "127.0.0.1", "--port", "0", "--no-access-log"]
    return ServerProcess("baseline", argv, log, ready, cwd=BENCHMARKS)


def baseline_as_emulator(log: Path) -> ServerProcess:
    """`python benchmarks/baseline_app.py`: the bare app started the way `fal-emulator serve` starts."""
    prefix = "baseline ready "

    def ready(line: str) -> tuple[str, int | None] | None:
        if not line.startswith(prefix):
            return None
        info = json.loads(line[len(prefix) :])
        return f"http://127.0.0.1:{info['port']}", int(info["pid"])

    return ServerProcess("baseline (as emulator)", [sys.executable, str(BENCHMARKS / "baseline_app.py")], log, ready)


class Emulator:
    """`fal-emulator serve --policy P [extra flags]` on free ports, with a fresh or given state dir."""

    def __init__(self, state_dir: Path, *, policy: str = "instant", extra_args: tuple[str, ...] = ()) -> None:
        self.process = EmulatorProcess(state_dir, policy=policy, extra_args=extra_args)
        # EmulatorProcess runs `python -m fal_emulator.cli serve`; run the `fal-emulator` script a user runs instead
        # (the same code) when it sits next to this interpreter.
        script = Path(sys.executable).with_name("fal-emulator")
        if script.is_file() and self.process.args[1:4] == ["-m", "fal_emulator.cli", "serve"]:
            self.process.args[0:4] = [str(script), "serve"]

    def start(self) -> Running:
        watchdog = threading.Timer(START_TIMEOUT, self.process.stop)  # start() waits on a line that may not come
        watchdog.start()
        try:
            started = time.perf_counter()
            listening = self.process.start()
            ready = time.perf_counter() - started
        finally:
            watchdog.cancel()
        return Running(listening.http_url, listening.pid, ready)

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def redis_server(log: Path) -> ServerProcess | None:
    """`redis-server` on a free loopback port, without persistence; None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(log.parent)]  # fmt: skip

    def ready(line: str) -> tuple[str, int | None] | None:
        return (f"redis://127.0.0.1:{port}", None) if "Ready to accept connections" in line else None

    return ServerProcess("redis-server", argv, log, ready)


class RedisDatabases:
    """Hands out an emptied database of one redis-server for each emulator started (16, in turn)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._next = 0

    def fresh(self) -> str:
        import redis

        url = f"{self.url}/{self._next % 16}"
        self._next += 1
        with redis.Redis.from_url(url) as client:
            client.flushdb()
        return url


def serve_help() -> str:
    """`fal-emulator serve --help`, to see which flags this emulator has."""
    done = subprocess.run(
        [sys.executable, "-m", "fal_emulator.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    return done.stdout


def supports_store(help_text: str, store: str) -> bool:
    """Does `serve --help` offer `--store` with `store` among its choices?"""
    return re.search(r"--store\b", help_text) is not None and store in help_text


# -- Prism ----------------------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def npm_installed(
    package: str, version: str, folder: Path, binary: Path, label: str, note: Callable[[str], None]
) -> Path | None:
    """`binary` of npm `package` at `version` under `folder`, installing it there with npm when needed.

    None (with a note) when node or npm is missing or the install fails.
    """
    manifest = folder / "node_modules" / package / "package.json"
    try:
        if binary.exists() and json.loads(manifest.read_text()).get("version") == version:
            return binary
    except (OSError, ValueError):
        pass
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        note(f"{label} skipped: node/npm not found (install Node.js to compare with {label})")
        return None
    note(f"installing {package}@{version} into {folder.relative_to(ROOT)} (npm)")
    command = [npm, "install", "--prefix", str(folder), f"{package}@{version}", "--no-audit", "--no-fund"]
    env = {**os.environ, "SCARF_ANALYTICS": "false"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, check=False)
    except subprocess.TimeoutExpired:
        note(f"{label} skipped: npm install timed out")
        return None
    if done.returncode != 0 or not binary.exists():
        note(f"{label} skipped: npm install failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return None
    return binary


def prism_binary(note: Callable[[str], None]) -> Path | None:
    """`benchmarks/.prism/node_modules/.bin/prism` at PRISM_VERSION, installed with npm when needed."""
    binary = PRISM_DIR / "node_modules" / ".bin" / "prism"
    return npm_installed("@stoplight/prism-cli", PRISM_VERSION, PRISM_DIR, binary, "Prism", note)


def prism(binary: Path, document: Path, log: Path) -> ServerProcess:
    port = free_port()
    pattern = re.compile(r"Prism is listening on (http://\S+)")

    def ready(line: str) -> tuple[str, int | None] | None:
        found = pattern.search(ANSI.sub("", line))
        return (found.group(1).rstrip("/"), None) if found else None

    env = {**os.environ, "SCARF_ANALYTICS": "false", "NO_COLOR": "1", "FORCE_COLOR": "0"}
    argv = [str(binary), "mock", "-h", "127.0.0.1", "-p", str(port), str(document)]
    return ServerProcess("prism", argv, log, ready, env=env)


# -- aimock ---------------------------------------------------------------------------------------

AIMOCK_HOST_HEADER = {"x-fal-target-host": "queue.fal.run"}  # aimock's fal handler answers only these
AIMOCK_PREFIX = "/fal"  # its host-mirrored paths: /fal/{model}[/requests/{id}[/status]]


def aimock_script(note: Callable[[str], None]) -> Path | None:
    """aimock's `llmock` server script (`dist/cli.js`) at AIMOCK_VERSION, installed with npm when needed."""
    folder = AIMOCK_DIR / "node_modules" / "@copilotkit" / "aimock"
    return npm_installed("@copilotkit/aimock", AIMOCK_VERSION, AIMOCK_DIR, folder / "dist" / "cli.js", "aimock", note)


def aimock(script: Path, output: Mapping[str, object], work: Path, log: Path) -> ServerProcess:
    """`node dist/cli.js -f fixture.json`: one fixture answers every fal submit with `output`.

    aimock's fal queue (`dist/fal.js`) completes a request at once when no progression is configured, as the
    emulator's `--policy instant` does.
    """
    fixture = work / "aimock-fal.json"
    fixture.write_text(json.dumps({"fixtures": [{"match": {"endpoint": "fal"}, "response": {"json": output}}]}))
    pattern = re.compile(r"listening on (http://\S+)")

    def ready(line: str) -> tuple[str, int | None] | None:
        found = pattern.search(ANSI.sub("", line))
        return (found.group(1).rstrip("/"), None) if found else None

    node = shutil.which("node") or "node"
    argv = [node, str(script), "-h", "127.0.0.1", "-p", "0", "-f", str(fixture), "--log-level", "info"]
    return ServerProcess("aimock", argv, log, ready, env={**os.environ, "NO_COLOR": "1"})


# -- granian --------------------------------------------------------------------------------------

GRANIAN_WORKER = re.compile(r"Spawning worker-1 with PID: (\d+)")


def granian_available() -> bool:
    return Path(sys.executable).with_name("granian").is_file()


def granian_emulator(state_dir: Path, log: Path, extra_env: Mapping[str, str] | None = None) -> ServerProcess:
    """The emulator's app (`fal_emulator.http.app:create_app`, settings from `FAL_EMULATOR_*`) under granian's CLI
    on plain HTTP: one worker, granian's defaults otherwise, no access log. Ready when its worker has started;
    the pid is the worker's, which serves the requests."""
    port = free_port()
    worker: list[int] = []

    def ready(line: str) -> tuple[str, int | None] | None:
        found = GRANIAN_WORKER.search(line)
        if found:
            worker.append(int(found.group(1)))
        if "Started worker-1" in line:
            return f"http://127.0.0.1:{port}", worker[0] if worker else None
        return None

    env = {
        **os.environ,
        "FAL_EMULATOR_STATE_DIR": str(state_dir),
        "FAL_EMULATOR_POLICY": "instant",
        "FAL_EMULATOR_SEED": "1",
        **(extra_env or {}),
    }
    argv = [
        str(Path(sys.executable).with_name("granian")), "--interface", "asgi", "--host", "127.0.0.1",
        "--port", str(port), "--no-access-log", "--factory", "fal_emulator.http.app:create_app",
    ]  # fmt: skip
    return ServerProcess("granian", argv, log, ready, env=env)
