"""Settings: one frozen dataclass, read once from the environment (prefix `FAL_EMULATOR_`) and CLI flags.

| field            | env var                        | default                          |
|------------------|--------------------------------|----------------------------------|
| host             | FAL_EMULATOR_HOST              | 127.0.0.1                        |
| http_port        | FAL_EMULATOR_HTTP_PORT         | 8470 (0 = any free port)         |
| https_port       | FAL_EMULATOR_HTTPS_PORT        | 8471 (0 = any free port)         |
| proxy_port       | FAL_EMULATOR_PROXY_PORT        | 8472: the HTTPS proxy for fal's hosts (0 = any free port) |
| state_dir        | FAL_EMULATOR_STATE_DIR         | $XDG_STATE_HOME/fal-emulator     |
| policy           | FAL_EMULATOR_POLICY            | default (see fal_emulator.queue)     |
| time_scale       | FAL_EMULATOR_TIME_SCALE        | 1.0 (virtual seconds per second) |
| seed             | FAL_EMULATOR_SEED              | none (random request ids)        |
| keys             | FAL_EMULATOR_KEYS              | none: any key is accepted        |
| public_url       | FAL_EMULATOR_PUBLIC_URL        | none: URLs follow the request    |
| stream_keepalive | FAL_EMULATOR_STREAM_KEEPALIVE  | 15.0 seconds                     |
| prompt_scenarios | FAL_EMULATOR_PROMPT_SCENARIOS  | false: `[[fal-emulator:…]]` in a prompt is ignored |
| control_token    | FAL_EMULATOR_CONTROL_TOKEN     | none (required beyond loopback)  |
| webhook_allow    | FAL_EMULATOR_WEBHOOK_ALLOW     | loopback only: hosts webhooks may be sent to |
| store            | FAL_EMULATOR_STORE             | memory; `sqlite`: state_dir/emulator.sqlite3; `redis` |
| redis_url        | FAL_EMULATOR_REDIS_URL         | redis://127.0.0.1:6379/0 (the `redis` store's server) |
| render           | FAL_EMULATOR_RENDER            | on: MP4s rendered from a readable input; `off`: fixtures |
| render_cache_mb  | FAL_EMULATOR_RENDER_CACHE_MB   | 512: MB of rendered MP4s kept (LRU) |
| replay           | FAL_EMULATOR_REPLAY            | none: a cassette (HAR) to play back |
| replay_match     | FAL_EMULATOR_REPLAY_MATCH      | input: endpoint + input digest; `endpoint`: then endpoint alone |
| replay_strict    | FAL_EMULATOR_REPLAY_STRICT     | false: an unmatched submit runs normally; true: 404 |
| concurrency      | FAL_EMULATOR_CONCURRENCY       | none: unlimited runners (fal gives new accounts 2) |
| retention        | FAL_EMULATOR_RETENTION         | fal: 1 h after completion, 6 min for results >= 10 KB |
| max_body_bytes   | FAL_EMULATOR_MAX_BODY_BYTES    | 41943040 (40 MiB); a larger body is 413 |
| read_timeout     | FAL_EMULATOR_READ_TIMEOUT      | 30.0 seconds for a request head; a body may stall that long |
| max_connections  | FAL_EMULATOR_MAX_CONNECTIONS   | 2048 per listener; beyond it uvicorn answers 503 |
| openapi_dir      | FAL_EMULATOR_OPENAPI_DIR       | the project's openapi/           |
| fixtures_dir     | FAL_EMULATOR_FIXTURES_DIR      | the project's fixtures/          |
| validate_at      | FAL_EMULATOR_VALIDATE_AT       | runner (as fal: a 422 result); submit: 422 at once |

Nothing reads the environment at import time; `Settings.from_env()` is called by the CLI or the app
factory. Malformed values raise ValueError naming them; an unknown `FAL_EMULATOR_*` variable is
ignored with a UserWarning naming it.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fal_emulator.limits import DEFAULT_MAX_BODY_BYTES
from fal_emulator.paths import FIXTURES_DIR, OPENAPI_DIR
from fal_emulator.queue import Policy, Retention

PREFIX = "FAL_EMULATOR_"
STORES = ("memory", "sqlite", "redis")
RENDER_MODES = ("on", "off")
REPLAY_MATCHES = ("input", "endpoint")
VALIDATE_AT = ("runner", "submit")


def default_state_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".local" / "state")
    return Path(base) / "fal-emulator"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    http_port: int = 8470
    https_port: int = 8471
    proxy_port: int = 8472
    state_dir: Path = dataclasses.field(default_factory=lambda: default_state_dir(os.environ))
    policy: str = "default"
    time_scale: float = 1.0
    seed: int | None = None
    keys: tuple[str, ...] = ()
    public_url: str | None = None
    stream_keepalive: float = 15.0
    prompt_scenarios: bool = False
    control_token: str | None = None
    webhook_allow: tuple[str, ...] = ()
    store: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    render: str = "on"
    render_cache_mb: int = 512
    replay: Path | None = None
    replay_match: str = "input"
    replay_strict: bool = False
    concurrency: int | None = None
    retention: str = "fal"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    read_timeout: float = 30.0
    max_connections: int = 2048
    openapi_dir: Path = OPENAPI_DIR
    fixtures_dir: Path = FIXTURES_DIR
    validate_at: str = "runner"

    def __post_init__(self) -> None:
        Policy.parse(self.policy)  # raises ValueError for an unknown policy
        Retention.parse(self.retention)
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1 (unset: no limit), got {self.concurrency}")
        if self.validate_at not in VALIDATE_AT:
            raise ValueError(f"unknown validate_at {self.validate_at!r}: use {' or '.join(VALIDATE_AT)}")
        if self.store not in STORES:
            raise ValueError(f"unknown store {self.store!r}: use {', '.join(STORES)}")
        if self.render not in RENDER_MODES:
            raise ValueError(f"unknown render mode {self.render!r}: use {' or '.join(RENDER_MODES)}")
        if self.render_cache_mb < 0:
            raise ValueError(f"render_cache_mb must be >= 0, got {self.render_cache_mb}")
        if self.replay_match not in REPLAY_MATCHES:
            raise ValueError(f"unknown replay match {self.replay_match!r}: use {' or '.join(REPLAY_MATCHES)}")
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")
        if self.max_body_bytes < 1 or self.read_timeout <= 0 or self.max_connections < 1:
            raise ValueError("max_body_bytes, read_timeout and max_connections must be > 0")
        for port in (self.http_port, self.https_port, self.proxy_port):
            if not 0 <= port <= 65535:
                raise ValueError(f"port {port} is out of range 0-65535")

    @property
    def progression(self) -> Policy:
        return Policy.parse(self.policy)

    @property
    def result_retention(self) -> Retention:
        return Retention.parse(self.retention)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `FAL_EMULATOR_*` variables, then `overrides` (CLI flags; None means unset)."""
        env = os.environ if environ is None else environ
        fields = {field.name: field for field in dataclasses.fields(cls)}
        values: dict[str, Any] = {"state_dir": default_state_dir(env)}
        for name, raw in env.items():
            if not name.startswith(PREFIX):
                continue
            key = name[len(PREFIX) :].lower()
            if key not in fields:  # a typo, or a variable of the user's own: say so, but start
                known = ", ".join(PREFIX + f.upper() for f in fields)
                warnings.warn(f"ignoring unknown setting {name}; known: {known}", UserWarning, stacklevel=2)
                continue
            values[key] = _cast(name, fields[key].type, raw)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


def _cast(name: str, type_: Any, raw: str) -> Any:
    kind = str(type_)
    try:
        if kind == "int":
            return int(raw)
        if kind == "int | None":
            return int(raw) if raw else None
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() not in {"1", "true", "0", "false"}:
                raise ValueError
            return raw.lower() in {"1", "true"}
        if kind == "Path":
            return Path(raw).expanduser()
        if kind == "Path | None":
            return Path(raw).expanduser() if raw else None
        if kind == "tuple[str, ...]":
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"setting {name} has value {raw!r}, which is not a valid {kind}") from None
    return raw or None if kind == "str | None" else raw
