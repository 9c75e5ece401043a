"""A submit's parts that are not the service's state: what a submit carries (`SubmitOptions`), what it gives back
(`Submission`), where requests are kept (`make_store`), and the runner's log lines and policy for one request
(`run_script`, `retry_script`, `refusal_policy`). Core: no HTTP.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from fal_emulator.queue import Policy, Priority, Status, StatusView, Store
from fal_emulator.scenarios import QUEUE_ATTEMPTS, Scenario
from fal_emulator.settings import Settings
from fal_emulator.store import MemoryStore
from fal_emulator.video import FPS, ClipSpec

# Seconds a runner spends on an input it refuses (FastAPI rejects the body before the app's code runs).
REFUSAL_SECONDS = 0.1


@functools.lru_cache(maxsize=4096)
def run_script(app_id: str, spec: ClipSpec) -> tuple[tuple[float, str], ...]:
    """The runner's log lines for one generation, as (fraction of the run, message).

    Cached: every request for the same app and clip shares one tuple (memory per request).
    """
    sound = " with audio" if spec.audio else ""
    return (
        (0.0, f"Loading {app_id} model weights"),
        (0.1, "Preparing inputs"),
        (0.2, f"Generating {spec.width}x{spec.height} video, {spec.duration}s at {FPS} fps{sound}"),
        (0.5, "Generating video: 50%"),
        (0.8, "Generating video: 100%"),
        (0.9, "Encoding MP4 (H.264" + (", AAC" if spec.audio else "") + ")"),
    )


def retry_script(scenario: Scenario, attempts: int, no_retry: bool) -> tuple[tuple[float, str], ...]:
    """A log line per attempt of fal's queue that failed and was retried (`runner_disconnected:N`)."""
    if scenario.failure is None or attempts < 2:
        return ()
    limit = 1 if no_retry else QUEUE_ATTEMPTS
    reason = f"{scenario.failure.message} ({scenario.failure.name})"
    return tuple(
        (0.0, f"{reason}: the request is retried on another runner, attempt {n} of {limit}")
        for n in range(2, attempts + 1)
    )


def refusal_policy(policy: Policy) -> Policy:
    """`policy` for a request whose runner refuses its input: it waits in the queue as usual, then runs for at
    most REFUSAL_SECONDS (timed policies); `polls:N`, `manual` and `immediate` keep their steps."""
    if policy.kind != "timed":
        return policy
    run = min(policy.seconds_in(Status.IN_PROGRESS, 0.0), REFUSAL_SECONDS)
    return replace(policy, run_seconds=run, seconds_per_unit=0.0)


@dataclass(frozen=True)
class SubmitOptions:
    """What a submit carries besides its body (query parameters and platform headers), already parsed.

    `start_timeout` (seconds) is `X-Fal-Request-Timeout`; `max_queue_length` is `fal_max_queue_length`;
    `webhook_url` is `fal_webhook`; `scenario` is the `X-Fal-Emulator-Scenario` header; `no_retry` is
    `X-Fal-No-Retry` (fal's queue then tries the request on one runner only); `priority` is
    `X-Fal-Queue-Priority`.
    """

    scenario: str | None = None
    start_timeout: float | None = None
    max_queue_length: int | None = None
    webhook_url: str | None = None
    no_retry: bool = False
    priority: Priority = "normal"


def make_store(settings: Settings) -> Store:
    """The store the settings name: in memory, the SQLite file `state_dir/emulator.sqlite3`, or Redis at
    `redis_url`. Raises OSError when Redis cannot be reached."""
    if settings.store == "sqlite":
        from fal_emulator.sqlite_store import SqliteStore

        return SqliteStore(settings.state_dir / "emulator.sqlite3")
    if settings.store == "redis":
        from fal_emulator.redis_store import RedisStore

        return RedisStore(settings.redis_url)
    return MemoryStore()


@dataclass(frozen=True)
class Submission:
    """A submitted request as submitted, the seconds its answer waits (a scripted `latency:…`) and the
    scenario it met (what its webhook needs: `payload_error`)."""

    view: StatusView
    delay: float = 0.0
    scenario: Scenario = Scenario()
    gateway_request_id: str | None = None  # the last attempt's id, when fal's queue retried the request
