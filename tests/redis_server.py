"""A throwaway `redis-server` for tests: a free loopback port, no persistence, readiness by its log line."""

from __future__ import annotations

import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import pytest
import redis

from fal_emulator.testing import stop_process

REDIS_SERVER = shutil.which("redis-server")
READY = "Ready to accept connections"


def needs_redis_server() -> None:
    """Skip the calling test, saying why, when this machine has no redis-server."""
    if REDIS_SERVER is None:
        pytest.skip("needs redis-server on PATH (Debian: apt-get install redis-server; scripts/system-packages)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """`redis-server` on 127.0.0.1 and a free port, in `directory`; `url` once started."""

    def __init__(self, directory: Path) -> None:
        assert REDIS_SERVER is not None
        self.binary = REDIS_SERVER
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> str:
        """Start it and wait for its ready line. Raises RuntimeError with its output if it does not come."""
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--dir", str(self.directory), "--daemonize", "no", "--loglevel", "notice"]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._process = process
        assert process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(process.stdout, lines), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise RuntimeError(f"redis-server did not start:\n{''.join(self.output)}")
            if READY in line:
                return self.url

    def _read(self, stream: IO[str], lines: queue.Queue[str | None]) -> None:
        for line in stream:
            self.output.append(line)
            lines.put(line)
        lines.put(None)

    def flush(self, db: int) -> str:
        """Empty database `db`; returns its URL."""
        url = f"{self.url}/{db}"
        with redis.Redis.from_url(url) as client:
            client.flushdb()
        return url

    def stop(self) -> None:
        stop_process(self._process, self._reader)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
