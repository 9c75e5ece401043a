"""Serve the emulator on three listeners, from one app and one state: plain HTTP, HTTPS, and an HTTPS proxy.

The Python client always speaks HTTPS to its queue host, and the JS client is easiest to point at plain
HTTP, so `serve()` binds both; the third listener is the `CONNECT` proxy (`fal_emulator.proxy`) that tunnels
fal's own hostnames to the HTTPS listener, so a client of any release reaches it unmodified through
`HTTPS_PROXY`. Port 0 picks a free one. All three are bound before anything is written, so a port in use
fails the start with its address and touches no file of a running server. Then `serve()` writes
`server.json` in the state directory with the ports it got, and prints one `fal-emulator ready {json}` line:
the readiness signal that `fal-emulator env`, the pytest fixture and scripts wait on. A state dir whose
`server.json` names a server that still answers is refused before anything is bound: one server per state dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import gc
import ipaddress
import json
import logging
import os
import secrets
import shlex
import signal
import socket
import sys
from collections.abc import Coroutine, Generator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from fal_emulator.connections import uvicorn_options
from fal_emulator.fal_hosts import FAL_HOSTS
from fal_emulator.http.app import create_app
from fal_emulator.http.shutdown import EndOpenAnswers
from fal_emulator.proxy import FalProxy
from fal_emulator.settings import Settings, default_state_dir
from fal_emulator.tls import TlsFiles, ensure_tls

READY_PREFIX = "fal-emulator ready "
ACCESS_LOG_LEVELS = {"trace", "debug", "info"}  # uvicorn's access lines are logged at INFO


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
    proxy_port: int | None = None  # the HTTPS proxy for fal's hostnames

    @property
    def http_url(self) -> str:
        return f"http://{_authority(self.host, self.http_port)}"

    @property
    def https_url(self) -> str:
        return f"https://{_authority(self.host, self.https_port)}"

    @property
    def proxy_url(self) -> str | None:
        """`http://127.0.0.1:8472`: the value of `HTTPS_PROXY` (the proxy itself speaks plain HTTP)."""
        return None if self.proxy_port is None else f"http://{_authority(self.host, self.proxy_port)}"


def reachable_host(host: str) -> str:
    """The address to connect to for a listen address: `0.0.0.0` -> `127.0.0.1`, `::` -> `::1`."""
    return "127.0.0.1" if host in {"0.0.0.0", ""} else "::1" if host == "::" else host


def _authority(host: str, port: int) -> str:
    shown = reachable_host(host)
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


class ListenError(OSError):
    """A listener could not be bound; the message names the address, the listener and what to do."""


class StateDirError(OSError):
    """The state directory cannot be written, or another running server uses it; the message says what to do."""


def refuse_a_running_server(state_dir: Path) -> None:
    """Raise StateDirError when `state_dir/server.json` names a server that still answers its health check with
    its pid: a second server would take over its `server.json` and certificates, and `env` would lose the first.
    A stale `server.json` (a crash, a stopped server) is no obstacle."""
    from fal_emulator.exports import NotRunning, running_server  # exports imports this module

    try:
        listening = running_server(state_dir)
    except NotRunning:
        return
    raise StateDirError(
        errno.EBUSY,
        f"the state dir {state_dir} is in use by a running fal-emulator (pid {listening.pid}, {listening.http_url}); "
        "stop it, or choose another with --state-dir DIR or FAL_EMULATOR_STATE_DIR",
    )


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


LISTENERS = {"http": "plain HTTP", "https": "HTTPS", "proxy": "HTTPS proxy"}


def bind_listeners(settings: Settings) -> dict[str, socket.socket]:
    """Bind the HTTP, HTTPS and proxy listeners, or none: raises ListenError naming the one that failed."""
    ports = {"http": settings.http_port, "https": settings.https_port, "proxy": settings.proxy_port}
    flags = {"http": "--http-port", "https": "--https-port", "proxy": "--proxy-port"}
    sockets: dict[str, socket.socket] = {}
    for name, port in ports.items():
        try:
            sockets[name] = bind(settings.host, port)
        except OSError as exc:
            for sock in sockets.values():
                sock.close()
            where = (
                _authority(settings.host, port) if settings.host not in {"0.0.0.0", "::"} else f"{settings.host}:{port}"
            )
            hint = (
                " (is another fal-emulator running? `fal-emulator env` names the one using this state dir)"
                if exc.errno == errno.EADDRINUSE
                else ""
            )
            raise ListenError(
                exc.errno,
                f"cannot listen on {where} for {LISTENERS[name]}: {exc.strerror or exc}{hint}; "
                f"choose another port with {flags[name]} PORT (0 = any free port)",
            ) from exc
    return sockets


def prepare_state_dir(settings: Settings) -> TlsFiles:
    """The CA and a server certificate naming loopback and fal's hostnames. Raises StateDirError."""
    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        return ensure_tls(settings.state_dir, settings.host, FAL_HOSTS)
    except OSError as exc:
        raise StateDirError(
            exc.errno,
            f"cannot write the state dir {settings.state_dir}: {exc.strerror or exc}; "
            "choose another with --state-dir DIR or FAL_EMULATOR_STATE_DIR",
        ) from exc


def uvicorn_config(
    app: ASGIApp, settings: Settings, *, log_level: str, lifespan: bool, tls: TlsFiles | None = None
) -> uvicorn.Config:
    """The one place where every uvicorn listener's settings are made: timeouts and limits
    (`fal_emulator.connections`), TLS."""
    extra: dict[str, Any] = {"ssl_certfile": tls.server_cert, "ssl_keyfile": tls.server_key} if tls else {}
    extra.update(uvicorn_options(settings, log_level))
    # At a level that mutes uvicorn's access logger, no access line is formatted for each request either.
    extra["access_log"] = log_level in ACCESS_LOG_LEVELS
    return uvicorn.Config(app, lifespan="on" if lifespan else "off", timeout_graceful_shutdown=1, **extra)


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: `serve()` stops every listener together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _OncePerProcess(logging.Filter):
    """uvicorn logs its start and stop lines once per listener: keep the first of each."""

    LINES = ("Started server process", "Shutting down", "Finished server process", "Waiting for connections")

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(self.LINES):
            return True
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def self_command() -> str:
    """An absolute command that runs this fal-emulator from any directory (for the `eval` line we print)."""
    script = Path(sys.executable).parent / "fal-emulator"
    if script.is_file():
        return shlex.quote(str(script.absolute()))
    return shlex.join([str(Path(sys.executable).absolute()), "-m", "fal_emulator.cli"])


def banner(listening: Listening, settings: Settings) -> str:
    """What `serve` prints on stderr once ready: the listeners and the exact command for another shell."""
    command = self_command() + " env"
    if settings.state_dir != default_state_dir(os.environ):
        command += f" --state-dir {shlex.quote(str(settings.state_dir.absolute()))}"
    return (
        f"fal-emulator: fal's queue API on {listening.https_url} (HTTPS) and {listening.http_url} (HTTP); "
        f"HTTPS proxy for fal's own hostnames on {listening.proxy_url}\n"
        f"fal-emulator: dashboard {listening.http_url}/_emulator/ui\n"
        "fal-emulator: in the shell that runs your app (from any directory):\n"
        f'  eval "$({command} --proxy)"   # fal\'s hostnames through the proxy: any fal_client release, uploads too\n'
        f'  eval "$({command})"           # or FAL_QUEUE_RUN_HOST / FAL_RUN_HOST (fal_client 0.13 and later)'
    )


async def serve(settings: Settings, *, log_level: str = "info", app: ASGIApp | None = None) -> None:
    """Run until SIGINT/SIGTERM (`app`: another app than the emulator's, e.g. `fal-emulator record`'s). Raises
    ListenError when a port cannot be bound (before anything is written), StateDirError when the state dir cannot
    be written or a running server uses it (before anything is bound or written), and OSError for anything else
    the system refuses."""
    if not is_loopback(settings.host) and not settings.control_token:
        settings = dataclasses.replace(settings, control_token=secrets.token_urlsafe(24))
        print(
            f"fal-emulator: listening beyond loopback; control plane token: {settings.control_token}", file=sys.stderr
        )
    refuse_a_running_server(settings.state_dir)
    sockets = bind_listeners(settings)
    try:
        tls = prepare_state_dir(settings)
    except StateDirError:
        for sock in sockets.values():
            sock.close()
        raise
    answers = EndOpenAnswers(app or create_app(settings))
    gc.collect()
    gc.freeze()  # what start-up made lives as long as the process: later collections need not walk it
    servers = [
        # The HTTP listener runs the app's lifespan (webhook deliveries) for both: they share one app.
        _Server(uvicorn_config(answers, settings, log_level=log_level, lifespan=True)),
        _Server(uvicorn_config(answers, settings, log_level=log_level, lifespan=False, tls=tls)),
    ]
    once = _OncePerProcess()
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(once)
    https_port = sockets["https"].getsockname()[1]
    proxy = FalProxy(upstream=(reachable_host(settings.host), https_port))
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True
        loop.call_later(0.5, answers.end)  # what is still open then is a stream or a long call: end it cleanly

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    tasks = [
        asyncio.create_task(servers[0].serve([sockets["http"]])),
        asyncio.create_task(servers[1].serve([sockets["https"]])),
    ]
    record = server_file(settings.state_dir)
    listening: Listening | None = None
    try:
        await proxy.start(sockets["proxy"])
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                await asyncio.gather(*tasks)
                raise SystemExit(1)
            await asyncio.sleep(0.005)
        listening = Listening(
            host=settings.host,
            http_port=sockets["http"].getsockname()[1],
            https_port=https_port,
            ca_cert=str(tls.ca_cert),
            bundle=str(tls.bundle),
            pid=os.getpid(),
            key=settings.keys[0] if settings.keys else None,
            proxy_port=sockets["proxy"].getsockname()[1],
        )
        record.touch(mode=0o600)
        record.write_text(json.dumps(asdict(listening), indent=2) + "\n")
        print(banner(listening, settings), file=sys.stderr, flush=True)
        print(READY_PREFIX + json.dumps(asdict(listening)), flush=True)  # last: whoever waits for it has the rest
        await asyncio.gather(*tasks)
    finally:
        await proxy.close()
        uvicorn_log.removeFilter(once)
        if listening is not None and read_listening(settings.state_dir) == listening:
            record.unlink(missing_ok=True)  # unless another server has taken the state dir over


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` (e.g. `serve(settings)`) to its end on uvloop's event loop, the one the `uvicorn` command
    picks (`--loop auto`), when uvloop is installed (`uvicorn[standard]`: Linux and macOS); else on asyncio's."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)
    else:  # pragma: no cover - Python 3.10
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.run(main)
