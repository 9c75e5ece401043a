"""Run a real emulator process for tests: free ports, its own state directory, readiness by signal.

    with EmulatorProcess(state_dir=tmp_path, policy="instant") as emulator:
        os.environ.update(emulator.client_env())   # before `import fal_client`
        ...

The process prints one `fal-emulator ready {json}` line once both listeners accept connections; this
waits for that line (no sleeping, no polling of ports) and raises RuntimeError with the server's
output if the process exits first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO

from emulator.server import READY_PREFIX, Listening, client_env


class EmulatorProcess:
    """`fal-emulator serve` in a subprocess on free ports (HTTP and HTTPS)."""

    def __init__(self, state_dir: Path, *, policy: str = "default", seed: int = 1, extra_args: tuple[str, ...] = ()):
        self.state_dir = state_dir
        self.args = [
            sys.executable, "-m", "emulator.cli", "serve",
            "--http-port", "0", "--https-port", "0",
            "--state-dir", str(state_dir), "--policy", policy, "--seed", str(seed),
            "--log-level", "warning", *extra_args,
        ]  # fmt: skip
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self.listening: Listening | None = None

    def start(self) -> Listening:
        """Start the server and wait for its ready line. Raises RuntimeError if it dies first."""
        process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._process = process
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(READY_PREFIX):
                self.listening = Listening(**json.loads(line[len(READY_PREFIX) :]))
                break
            self.output.append(line)
        else:
            process.wait()
            raise RuntimeError(f"fal-emulator exited with {process.returncode} before ready:\n{''.join(self.output)}")
        threading.Thread(target=self._drain, args=(process.stdout,), daemon=True).start()
        return self.listening

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self.output.append(line)

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()

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

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
