"""Run a real emulator process for tests: free ports, its own state directory, readiness by signal.

    with EmulatorProcess(state_dir=tmp_path, policy="instant") as emulator:
        os.environ.update(emulator.client_env())   # before `import fal_client`
        os.environ.update(emulator.proxy_env())    # or: fal's own hostnames through the HTTPS proxy
        ...

The process prints one `fal-emulator ready {json}` line once its listeners accept connections; this
waits for that line (no sleeping, no polling of ports, with a deadline) and raises RuntimeError with
the server's output if the process exits or hangs first.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from fal_emulator.server import READY_PREFIX, Listening, client_env


def stop_process(process: subprocess.Popen[str] | None, reader: threading.Thread | None) -> None:
    """Terminate `process` (SIGKILL if it is still running 10 s later), let `reader`, the thread reading its
    output, reach the end of it, then close the pipe (closing it under the reader would raise)."""
    if process is None:
        return
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if reader is not None:
        reader.join(timeout=10)
    if process.stdout:
        process.stdout.close()


class EmulatorProcess:
    """`fal-emulator serve` in a subprocess on free ports (HTTP, HTTPS and the HTTPS proxy)."""

    def __init__(self, state_dir: Path, *, policy: str = "default", seed: int = 1, extra_args: tuple[str, ...] = ()):
        self.state_dir = state_dir
        self.args = [
            sys.executable, "-m", "fal_emulator.cli", "serve",
            "--http-port", "0", "--https-port", "0", "--proxy-port", "0",
            "--state-dir", str(state_dir), "--policy", policy, "--seed", str(seed),
            "--log-level", "warning", *extra_args,
        ]  # fmt: skip
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.listening: Listening | None = None

    def start(self, timeout: float = 60.0) -> Listening:
        """Start the server and wait (at most `timeout` seconds) for its ready line.

        Raises RuntimeError, with the server's output, if it exits or hangs before it is ready.
        """
        process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
                self.kill()
                raise RuntimeError(f"fal-emulator was not ready after {timeout} s:\n{''.join(self.output)}") from None
            if line is None:
                process.wait()
                raise RuntimeError(
                    f"fal-emulator exited with {process.returncode} before ready:\n{''.join(self.output)}"
                )
            if line.startswith(READY_PREFIX):
                self.listening = Listening(**json.loads(line[len(READY_PREFIX) :]))
                return self.listening
            self.output.append(line)

    def _read(self, stream: IO[str], lines: queue.Queue[str | None]) -> None:
        """Hand lines to start() until the ready line, then keep the rest in `output`."""
        ready = False
        for line in stream:
            if ready:
                self.output.append(line)
            else:
                ready = line.startswith(READY_PREFIX)
                lines.put(line)
        lines.put(None)

    def stop(self) -> None:
        stop_process(self._process, self._reader)

    def kill(self) -> None:
        """SIGKILL the server (no shutdown at all), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def client_env(self, key: str | None = None) -> dict[str, str]:
        """The variables that point an unmodified fal_client at this emulator (set them before import)."""
        assert self.listening is not None, "start() first"
        key = key or self.listening.key or "fal-emulator-key"
        return client_env(self.listening.host, self.listening.https_port, self.listening.bundle, key)

    def proxy_env(self, key: str | None = None) -> dict[str, str]:
        """The variables of `fal-emulator env --proxy`: clients keep fal's hostnames and go through the proxy."""
        from fal_emulator.exports import proxy_mode

        assert self.listening is not None, "start() first"
        return proxy_mode(self.listening, key or self.listening.key or "fal-emulator-key")

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
