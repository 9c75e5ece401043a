"""Serve the emulator on two listeners, plain HTTP and HTTPS, from one app and one state.

The Python client always speaks HTTPS to its queue host, and the JS client is easiest to point at plain
HTTP, so `serve()` binds both (port 0 picks a free one), writes `server.json` in the state directory
with the ports it got, and prints one `fal-emulator ready {json}` line: the readiness signal that
`fal-emulator env`, the pytest fixture and scripts wait on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import os
import secrets
import signal
import socket
import sys
from collections.abc import Generator
from dataclasses import asdict, dataclass
from pathlib import Path

import uvicorn

from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from fal_emulator.tls import ensure_tls

READY_PREFIX = "fal-emulator ready "


@dataclass(frozen=True)
class Listening:
    """Where a running emulator listens, as written to `state_dir/server.json`."""

    host: str
    http_port: int
    https_port: int
    ca_cert: str
    bundle: str
    pid: int
    key: str | None = None  # the first accepted key when `--key` restricts them, so `env` can export it

    @property
    def http_url(self) -> str:
        return f"http://{_authority(self.host, self.http_port)}"

    @property
    def https_url(self) -> str:
        return f"https://{_authority(self.host, self.https_port)}"


def _authority(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in {"0.0.0.0", ""} else "::1" if host == "::" else host
    return f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"


def client_env(host: str, https_port: int, bundle: str, key: str) -> dict[str, str]:
    """The variables that point an unmodified fal_client at an emulator; fal_client reads them at import.

    fal_client 1.0.3 builds `https://{FAL_QUEUE_RUN_HOST}/` and `https://{FAL_RUN_HOST}/` (`auth.py`,
    `client.py`); the sync API is served under `/run/`, so `FAL_RUN_HOST` carries that path.
    """
    authority = _authority(host, https_port)
    return {
        "FAL_KEY": key,
        "FAL_QUEUE_RUN_HOST": authority,
        "FAL_RUN_HOST": f"{authority}/run",
        "SSL_CERT_FILE": bundle,
    }


def is_loopback(host: str) -> bool:
    """Is `host` a loopback name or address (127.0.0.0/8, ::1, localhost)?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_file(state_dir: Path) -> Path:
    return state_dir / "server.json"


def read_listening(state_dir: Path) -> Listening | None:
    """The last `server.json` written under `state_dir`, or None."""
    try:
        return Listening(**json.loads(server_file(state_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port). Raises OSError if it is taken.

    The socket is made with `proto=IPPROTO_TCP` (not 0, as `socket.create_server` does): asyncio sets
    TCP_NODELAY only on connections of such sockets, and without it every answer waits ~40 ms for a
    delayed ACK (Nagle).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: `serve()` stops both listeners together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(settings: Settings, *, log_level: str = "info") -> None:
    """Run until SIGINT/SIGTERM. Raises OSError when a port cannot be bound or the state dir written."""
    if not is_loopback(settings.host) and not settings.control_token:
        settings = dataclasses.replace(settings, control_token=secrets.token_urlsafe(24))
        print(
            f"fal-emulator: listening beyond loopback; control plane token: {settings.control_token}", file=sys.stderr
        )
    tls = ensure_tls(settings.state_dir, settings.host)
    http_socket, https_socket = bind(settings.host, settings.http_port), bind(settings.host, settings.https_port)
    app = create_app(settings)
    servers = [
        # The HTTP listener runs the app's lifespan (webhook deliveries) for both: they share one app.
        _Server(uvicorn.Config(app, lifespan="on", log_level=log_level, timeout_graceful_shutdown=1)),
        _Server(
            uvicorn.Config(
                app,
                lifespan="off",
                log_level=log_level,
                timeout_graceful_shutdown=1,
                ssl_certfile=tls.server_cert,
                ssl_keyfile=tls.server_key,
            )
        ),
    ]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    tasks = [
        asyncio.create_task(servers[0].serve([http_socket])),
        asyncio.create_task(servers[1].serve([https_socket])),
    ]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            await asyncio.gather(*tasks)
            raise SystemExit(1)
        await asyncio.sleep(0.005)
    listening = Listening(
        host=settings.host,
        http_port=http_socket.getsockname()[1],
        https_port=https_socket.getsockname()[1],
        ca_cert=str(tls.ca_cert),
        bundle=str(tls.bundle),
        pid=os.getpid(),
        key=settings.keys[0] if settings.keys else None,
    )
    record = server_file(settings.state_dir)
    record.touch(mode=0o600)
    record.write_text(json.dumps(asdict(listening), indent=2) + "\n")
    print(READY_PREFIX + json.dumps(asdict(listening)), flush=True)
    print(f"fal-emulator: queue {listening.https_url} (HTTPS) and {listening.http_url} (HTTP)", file=sys.stderr)
    try:
        await asyncio.gather(*tasks)
    finally:
        if read_listening(settings.state_dir) == listening:  # another server may have taken the state dir over
            record.unlink(missing_ok=True)
