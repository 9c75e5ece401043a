"""What `fal-emulator env` prints: the shell lines that point unmodified clients at a running emulator.

Two modes:

- `env` (the host mode): `FAL_QUEUE_RUN_HOST` / `FAL_RUN_HOST` name the emulator's HTTPS listener, which
  fal_client 0.13 and later read at import (`auth.py`, `client.py`);
- `env --proxy`: `HTTPS_PROXY` names the emulator's proxy (`fal_emulator.proxy`), so every client of any
  release keeps fal's own hostnames (`queue.fal.run`, `rest.fal.ai`, `v3.fal.media`, ...), uploads included.

Both trust the emulator's CA the way each tool looks for one: `SSL_CERT_FILE` (Python's ssl, httpx and so
fal_client), `REQUESTS_CA_BUNDLE` (requests), `CURL_CA_BUNDLE` (curl), `NODE_EXTRA_CA_CERTS` (node). The bundle
is certifi's CAs plus the emulator's, so the rest of the internet stays trusted.

The values come from `server.json` of a server that answers: `running_server()` checks both, so a stale file
or a stopped server is an error that says what to do, never a silent wrong port.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import httpx

from fal_emulator.fal_hosts import FAL_HOSTS
from fal_emulator.server import Listening, client_env, read_listening, server_file

DEFAULT_KEY = "fal-emulator-key"
LOOPBACK = "localhost,127.0.0.1,::1"
HEALTH_TIMEOUT = 2.0  # seconds


class NotRunning(RuntimeError):
    """No emulator answers for this state dir; the message says what was found and what to do."""


def running_server(state_dir: Path) -> Listening:
    """The `Listening` record of the emulator serving `state_dir`, checked by a call to its health endpoint.

    Raises NotRunning when there is no readable `server.json`, or when nothing answers at its address with
    its pid (a server that crashed, or one that another has replaced).
    """
    start = f"start one with `fal-emulator serve --state-dir {shlex.quote(str(state_dir))}`"
    listening = read_listening(state_dir)
    if listening is None:
        return _missing(state_dir, start)
    url = f"{listening.http_url}/_emulator/health"
    try:
        with httpx.Client(trust_env=False, timeout=HEALTH_TIMEOUT) as client:  # never through a proxy
            health = client.get(url).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise NotRunning(
            f"{server_file(state_dir)} names a server at {listening.http_url} (pid {listening.pid}), "
            f"but it does not answer ({type(exc).__name__}): it has stopped; {start}"
        ) from None
    if not isinstance(health, dict) or health.get("pid") != listening.pid:
        raise NotRunning(
            f"{server_file(state_dir)} names pid {listening.pid} at {listening.http_url}, but another process "
            f"answers there; {start}"
        )
    return listening


def _missing(state_dir: Path, start: str) -> Listening:
    if state_dir.exists() and not state_dir.is_dir():
        raise NotRunning(f"the state dir {state_dir} is not a directory: name the running server's with --state-dir")
    raise NotRunning(f"no fal-emulator is running with the state dir {state_dir}; {start}")


def _ca_variables(listening: Listening) -> dict[str, str]:
    return {
        "SSL_CERT_FILE": listening.bundle,
        "REQUESTS_CA_BUNDLE": listening.bundle,
        "CURL_CA_BUNDLE": listening.bundle,
        "NODE_EXTRA_CA_CERTS": listening.ca_cert,
    }


def host_mode(listening: Listening, key: str) -> dict[str, str]:
    """`FAL_KEY`, `FAL_QUEUE_RUN_HOST`, `FAL_RUN_HOST` and the CA variables."""
    return {**client_env(listening.host, listening.https_port, listening.bundle, key), **_ca_variables(listening)}


def proxy_mode(listening: Listening, key: str) -> dict[str, str]:
    """`HTTPS_PROXY` (both cases), `NO_PROXY` for loopback (both cases), `FAL_KEY` and the CA variables. As
    an environment of its own (`EmulatorProcess.proxy_env`); `env_lines` appends `NO_PROXY` to the user's."""
    assert listening.proxy_url is not None, "this server has no proxy listener"
    return {
        "HTTPS_PROXY": listening.proxy_url,
        "https_proxy": listening.proxy_url,
        "NO_PROXY": LOOPBACK,
        "no_proxy": LOOPBACK,
        "FAL_KEY": key,
        **_ca_variables(listening),
    }


APPENDED = ("NO_PROXY", "no_proxy")  # the user's own entries are kept: loopback is added after them


def _export(name: str, value: str, *, append: bool = False) -> str:
    """`export NAME=value`, quoted for the shell; with `append`, after the variable's value when it has one
    (`export NO_PROXY="${NO_PROXY:+$NO_PROXY,}localhost,..."`, evaluated by the shell that runs `eval`)."""
    if not append:
        return f"export {name}={shlex.quote(value)}"
    return f'export {name}="${{{name}:+${name},}}"{shlex.quote(value)}'


def env_lines(listening: Listening, *, key: str | None = None, proxy: bool = False) -> list[str]:
    """The lines for `eval`: comments, `export NAME=value`, and (proxy mode) `unset` of the host mode's names."""
    key = key or listening.key or DEFAULT_KEY
    if proxy:
        if listening.proxy_url is None:
            raise NotRunning("this emulator has no HTTPS proxy listener (it predates it): restart it")
        lines = [
            f"# fal-emulator: fal's hostnames through the HTTPS proxy {listening.proxy_url}",
            f"# It tunnels only {', '.join(FAL_HOSTS)} (port 443) to the emulator.",
            "# Every other HTTPS host gets 403 Forbidden and no connection is made: run other network commands",
            "# in another shell, or add their hosts to NO_PROXY. Loopback (NO_PROXY) is reached directly.",
        ]
        values = proxy_mode(listening, key)
    else:
        lines = [f"# fal-emulator: fal_client's hosts pointed at {listening.https_url}"]
        values = host_mode(listening, key)
    lines += [_export(name, value, append=proxy and name in APPENDED) for name, value in values.items()]
    if proxy:
        lines.append("unset FAL_QUEUE_RUN_HOST FAL_RUN_HOST")
    return lines
