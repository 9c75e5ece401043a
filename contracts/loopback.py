"""Serve an ASGI app on a loopback port from a thread: how the kit runs the emulator in-process.

    with LoopbackServer(create_app(settings)) as base_url:   # "http://127.0.0.1:41234"
        ...

The app runs in this process (so the kit can drive its clock directly) but is reached over real HTTP,
exactly as a remote target is: streaming, timeouts and connection handling are the same code paths.
Readiness is a signal from uvicorn's startup, never a sleep.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Generator
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT = 30.0  # seconds


class _Server(uvicorn.Server):
    """uvicorn without signal handling (it runs in a thread), with a readiness event."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LoopbackServer:
    """`app` on `http://127.0.0.1:<free port>`, served by a daemon thread until `stop()`."""

    def __init__(self, app: ASGIApp) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        config = uvicorn.Config(app, lifespan="off", log_level="critical", timeout_graceful_shutdown=1)
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def start(self) -> str:
        """Start serving; returns the base URL. Raises RuntimeError if uvicorn does not start."""
        self._thread.start()
        if not self._server.ready.wait(STARTUP_TIMEOUT) or not self._server.started:
            self.stop()
            raise RuntimeError("the in-process emulator did not start")
        return self.base_url

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
