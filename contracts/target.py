"""What the kit checks: a target's URLs, credentials, TLS trust, and whether it is an emulator.

Three kinds of target:

- `in-process`: the kit builds the emulator app here (`fal_emulator.http.app.create_app`) and serves it on a
  loopback port (`fal_emulator.contracts.loopback`); it drives the app's `VirtualClock` directly.
- `emulator`: a running `fal-emulator serve` at `--base-url` (it answers `GET /_emulator/health`);
  the clock is driven through `POST /_emulator/clock {"advance": seconds}` when that route exists.
- `remote`: anything else (real fal, a reseller). Nothing that generates video runs there unless the
  user allows spending (`fal_emulator.contracts.spend`).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol

import httpx
from starlette.types import ASGIApp

from fal_emulator.contracts.loopback import LoopbackServer
from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings

TargetKind = Literal["in-process", "emulator", "remote"]
AppWrapper = Callable[[ASGIApp], ASGIApp]
HEALTH_PATH = "/_emulator/health"
CLOCK_PATH = "/_emulator/clock"
IN_PROCESS_KEY = "Key fal-contracts"


class ClockControl(Protocol):
    """Moves a target's virtual time on (seconds >= 0)."""

    def advance(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Target:
    """Where requests go and how: `base_url` is the queue host (`https://queue.fal.run`), `run_base_url`
    the synchronous host (`https://fal.run`; `{base}/run` on an emulator), `authorization` the whole
    `Authorization` header value, `verify` a CA bundle path or True."""

    kind: TargetKind
    base_url: str
    run_base_url: str
    authorization: str
    verify: str | bool = True
    clock: ClockControl | None = None

    @property
    def is_emulator(self) -> bool:
        return self.kind != "remote"

    @property
    def label(self) -> str:
        return f"{self.base_url} ({self.kind})"

    def headers(self) -> dict[str, str]:
        return {"Authorization": self.authorization}

    def client(self, *, timeout: float = 30.0) -> httpx.Client:
        """An httpx client trusting `verify`, sending the Authorization header; the caller closes it."""
        return httpx.Client(headers=self.headers(), verify=ssl_context(self.verify), timeout=timeout)


def authorization_header(key: str) -> str:
    """`--key` as a header value: `Key <key>` unless it already names a scheme (`Key …`, `Bearer …`)."""
    scheme = key.split(" ", 1)[0].lower()
    return key if scheme in {"key", "bearer"} and " " in key.strip() else f"Key {key}"


def ssl_context(verify: str | bool) -> ssl.SSLContext | bool:
    """An SSL context trusting the CA bundle `verify` (a path), or `verify` itself when it is a bool."""
    if isinstance(verify, bool):
        return verify
    return ssl.create_default_context(cafile=verify)


def ca_bundle(explicit: str | None, environ: dict[str, str] | None = None) -> str | bool:
    """The CA bundle to trust: `--ca-bundle`, else `SSL_CERT_FILE`, else the system's (True)."""
    env = os.environ if environ is None else environ
    return explicit or env.get("SSL_CERT_FILE") or True


class HttpClock:
    """A running emulator's clock, driven by `POST /_emulator/clock {"advance": seconds}`."""

    def __init__(self, base_url: str, verify: str | bool) -> None:
        self._url = base_url.rstrip("/") + CLOCK_PATH
        self._verify = verify

    def advance(self, seconds: float) -> None:
        response = httpx.post(self._url, json={"advance": seconds}, verify=ssl_context(self._verify), timeout=10)
        response.raise_for_status()


def discover(base_url: str, run_base_url: str | None, authorization: str, verify: str | bool) -> Target:
    """Probe `base_url`: an emulator answers `GET /_emulator/health` with `{"status": "ok"}`.

    Raises httpx.HTTPError when the target cannot be reached at all.
    """
    base = base_url.rstrip("/")
    with httpx.Client(verify=ssl_context(verify), timeout=10) as client:
        health = client.get(base + HEALTH_PATH)
        is_emulator = health.status_code == 200 and _json_status(health) == "ok"
        clock: ClockControl | None = None
        if is_emulator and client.post(base + CLOCK_PATH, json={"advance": 0}).status_code == 200:
            clock = HttpClock(base, verify)
    default_run = f"{base}/run" if is_emulator else "https://fal.run"
    return Target(
        kind="emulator" if is_emulator else "remote",
        base_url=base,
        run_base_url=(run_base_url or default_run).rstrip("/"),
        authorization=authorization,
        verify=verify,
        clock=clock,
    )


def _json_status(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("status") if isinstance(body, dict) else None


class InProcessEmulator:
    """A fresh emulator app (policy `policy`, request ids from `seed`) served on loopback for one suite.

    `wrap` wraps the app before it is served (the kit's own tests use it to break one rule at a time).
    `frozen` freezes its virtual clock, so time moves only when the suite advances it.
    """

    def __init__(self, *, policy: str, seed: int, wrap: AppWrapper | None = None, frozen: bool = False) -> None:
        app = create_app(Settings(policy=policy, seed=seed, stream_keepalive=1.0))
        self.emulator = app.state.emulator
        if frozen:
            self.emulator.clock.freeze()
        self._server = LoopbackServer(wrap(app) if wrap else app)

    def __enter__(self) -> Target:
        base = self._server.start()
        return Target(
            kind="in-process",
            base_url=base,
            run_base_url=f"{base}/run",
            authorization=IN_PROCESS_KEY,
            verify=False,
            clock=self.emulator.clock,
        )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.stop()
