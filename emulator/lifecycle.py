"""The request lifecycle as data: fal's queue states, the transitions between them, progression policies,
outcomes, priorities, retention, and the stored `Request` record. Only pure functions of one request live
here (its run time, its log lines); `fal_emulator.queue` moves requests through these states.

    IN_QUEUE --start--> IN_PROGRESS --finish--> COMPLETED
    IN_QUEUE --cancel-> COMPLETED          (never runs; completes as `client_cancelled`)
    IN_PROGRESS --cancel-> COMPLETED       (the emulated runner honours the cancel)
    IN_QUEUE --expire--> COMPLETED         (its start deadline passed: 504 `request_timeout`, type `user`)

A failed request is COMPLETED with an error outcome: fal has no FAILED status
(https://fal.ai/docs/documentation/model-apis/inference/queue.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from fal_emulator import jsontext
from fal_emulator.clock import isoformat
from fal_emulator.errors import FalError

JSON = dict[str, Any]


class Status(str, Enum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


Event = Literal["start", "finish", "cancel", "expire"]

TRANSITIONS: Mapping[tuple[Status, Event], Status] = {
    (Status.IN_QUEUE, "start"): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, "finish"): Status.COMPLETED,
    (Status.IN_QUEUE, "cancel"): Status.COMPLETED,
    (Status.IN_PROGRESS, "cancel"): Status.COMPLETED,
    (Status.IN_QUEUE, "expire"): Status.COMPLETED,
}
# The event a policy fires to move a request on from each state.
PROGRESS_EVENT: Mapping[Status, Event] = {Status.IN_QUEUE: "start", Status.IN_PROGRESS: "finish"}
# Order of states, for "status never goes backwards".
RANK = {Status.IN_QUEUE: 0, Status.IN_PROGRESS: 1, Status.COMPLETED: 2}


class InvalidTransition(ValueError):
    """An event that the current state does not allow (e.g. `start` on a COMPLETED request)."""


def next_status(status: Status, event: Event) -> Status:
    """The state `event` leads to from `status`. Raises InvalidTransition when there is none."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise InvalidTransition(f"no transition {event!r} from {status.value}") from None


PolicyKind = Literal["immediate", "polls", "timed", "manual"]


@dataclass(frozen=True)
class Policy:
    """When a request takes its next step.

    - `immediate`: completes as soon as it is submitted (the submit answer still says IN_QUEUE).
    - `polls`: stays in each state for `polls` status polls, then moves on.
    - `timed`: `queue_seconds` in IN_QUEUE, then `run_seconds + seconds_per_unit * units` in IN_PROGRESS,
      measured on the injected clock (seconds).
    - `manual`: moves only when `Queue.step` is called (the control plane).
    """

    kind: PolicyKind
    polls: int = 1
    queue_seconds: float = 0.0
    run_seconds: float = 0.0
    seconds_per_unit: float = 0.0

    def seconds_in(self, status: Status, units: float) -> float:
        if status is Status.IN_QUEUE:
            return self.queue_seconds
        return self.run_seconds + self.seconds_per_unit * units

    def describe(self) -> str:
        """The policy as `parse` reads it: a preset's name, or `polls:N` / `timed:Q,R`."""
        for name, preset in PRESETS.items():
            if preset == self and name != "immediate":
                return name
        if self.kind == "polls":
            return f"polls:{self.polls}"
        if self.kind == "timed" and not self.seconds_per_unit:
            return f"timed:{self.queue_seconds:g},{self.run_seconds:g}"
        return self.kind

    @classmethod
    def parse(cls, text: str) -> Policy:
        """`default`, `instant`, `realistic`, `immediate`, `manual`, `polls:N` or `timed:Q,R` (seconds).

        Raises ValueError naming the accepted forms.
        """
        name, _, arg = text.strip().partition(":")
        if not arg and name in PRESETS:
            return PRESETS[name]
        try:
            if name == "polls":
                count = int(arg)
                if count >= 1:
                    return cls("polls", polls=count)
            elif name == "timed":
                queue_s, run_s = (float(part) for part in arg.split(","))
                if queue_s >= 0 and run_s >= 0:
                    return cls("timed", queue_seconds=queue_s, run_seconds=run_s)
        except ValueError:
            pass
        raise ValueError(
            f"unknown progression policy {text!r}: use one of {', '.join(PRESETS)}, 'polls:N' (N >= 1) "
            "or 'timed:QUEUE_SECONDS,RUN_SECONDS'"
        )


PRESETS: Mapping[str, Policy] = {
    # One fal_client.subscribe sees IN_QUEUE, IN_PROGRESS with logs, and COMPLETED in about 2 s.
    "default": Policy("timed", queue_seconds=0.5, run_seconds=1.5),
    "instant": Policy("immediate"),
    "immediate": Policy("immediate"),
    "manual": Policy("manual"),
    # Veo-like: a few seconds queued, then 20 s + 10 s per second of video (an 8 s clip takes 100 s).
    "realistic": Policy("timed", queue_seconds=5.0, run_seconds=20.0, seconds_per_unit=10.0),
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a request completes with: the model output (200) or an error answer."""

    status_code: int
    body: JSON
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def success(cls, output: JSON) -> Outcome:
        return cls(200, output)

    @classmethod
    def failure(cls, error: FalError) -> Outcome:
        return cls(error.status_code, error.body, error.headers)

    @property
    def ok(self) -> bool:
        return self.status_code == 200

    @property
    def message(self) -> str | None:
        """The human-readable message of an error outcome (None on success)."""
        return None if self.ok else FalError(self.body, status_code=self.status_code, headers=self.headers).message

    @property
    def error(self) -> str | None:
        """The `error` a COMPLETED status shows: the message of an error that names its `error_type`.

        None on success, and for an app's own answer that names no type (FastAPI's validation 422): that
        error shows only at the result (fal's CLI tests, `projects/fal/tests/unit/cli/test_api.py`, model an
        app error as a COMPLETED status without `error`; TanStack/ai PR #396 saw the same on fal).
        """
        return self.message if self.error_type else None

    @property
    def error_type(self) -> str | None:
        if self.ok:
            return None
        error_type = self.headers.get("X-Fal-Error-Type") or self.body.get("error_type")
        return str(error_type) if error_type else None


Priority = Literal["normal", "low"]
# Queue order by priority: every `normal` request waits ahead of every `low` one
# (`X-Fal-Queue-Priority`, https://fal.ai/docs/documentation/model-apis/common-parameters.md).
PRIORITY_RANK: Mapping[str, int] = {"normal": 0, "low": 1}
SEQUENCE_BITS = 40  # a queue order key is (priority rank, sequence) packed in one int (exact as a double)


def order_key(request: Request) -> int:
    """The request's place in queue order, as one integer: all `normal` keys sort before any `low` key."""
    return (PRIORITY_RANK[request.priority] << SEQUENCE_BITS) | request.sequence


LARGE_RESULT_BYTES = 10 * 1024


@dataclass(frozen=True)
class Retention:
    """How long a completed request is kept, in seconds after completion; None keeps it until `reset()`.

    fal keeps a result 1 hour after completion, 6 minutes if it is 10 KB or larger
    (https://fal.ai/docs/inference-api/queue/result): `Retention()`. After that every queue route
    answers 404 for the request, as for an unknown id.
    """

    seconds: float | None = 3600.0
    large_seconds: float | None = 360.0  # for results of LARGE_RESULT_BYTES or more

    def after(self, result_bytes: int) -> float | None:
        return self.large_seconds if result_bytes >= LARGE_RESULT_BYTES else self.seconds

    def describe(self) -> str:
        if self == Retention():
            return "fal"
        return "forever" if self.seconds is None else f"{self.seconds:g}"

    @classmethod
    def parse(cls, text: str) -> Retention:
        """`fal` (1 h, 6 min for results of 10 KB or more), `forever`, or seconds (> 0) for every result.

        Raises ValueError naming the accepted forms.
        """
        value = text.strip().lower()
        if value == "fal":
            return cls()
        if value == "forever":
            return cls(None, None)
        try:
            seconds = float(value)
        except ValueError:
            seconds = float("nan")
        if seconds > 0 and seconds != float("inf"):
            return cls(seconds, seconds)
        raise ValueError(f"unknown retention {text!r}: use 'fal', 'forever' or a number of seconds > 0")


@dataclass(slots=True)
class _RequestFields:
    """The fields of a `Request` (its `input` as it is kept: see `Request.input`)."""

    request_id: str
    endpoint_id: str
    app_id: str
    input: Any
    outcome: Outcome
    policy: Policy
    submitted_at: float
    sequence: int
    units: float = 1.0
    # (fraction of the run, message) or (fraction, message, level, source): the runner's log lines
    script: Sequence[tuple[Any, ...]] = ()
    status: Status = Status.IN_QUEUE
    entered_at: float = 0.0
    polls: int = 0
    started_at: float | None = None
    completed_at: float | None = None
    logs: list[JSON] = field(default_factory=list)
    start_deadline: float | None = None  # POSIX seconds; from `X-Fal-Request-Timeout`
    webhook_url: str | None = None  # from `?fal_webhook=`
    scenario: str | None = None  # the scenario it was submitted with, as tokens (`content_policy_violation`)
    priority: Priority = "normal"  # from `X-Fal-Queue-Priority`
    ready: bool = False  # IN_QUEUE and allowed to start by its policy: it waits only for a free runner
    expires_at: float | None = None  # COMPLETED: when the queue forgets it (its retention window)
    closing_line: bool = True  # end the logs with the emulator's own line (`Request completed.`, …)
    metrics: JSON | None = None  # the COMPLETED status's `metrics` as given (a replayed request), else computed


_KEPT_INPUT = _RequestFields.__dict__["input"]  # the slot `Request.input` keeps the input (or its text) in


class Request(_RequestFields):
    """One submitted request and everything the queue knows about it.

    New fields always get defaults, so requests stored by an older release still load.
    """

    __slots__ = ()

    @property
    def input(self) -> Any:
        """The input as submitted: any JSON value. Kept as given, a value or its JSON text as `bytes` (the HTTP
        body, which the service gives the memory store: a third the size of the parsed value, issue 12's 1.5 KB
        per queued request); text is decoded on each read, as the edge decoded it (key order, numbers), into a
        new value. Raises ValueError only for text the edge did not accept."""
        kept = _KEPT_INPUT.__get__(self, _RequestFields)
        return jsontext.loads(kept) if isinstance(kept, bytes) else kept

    @input.setter
    def input(self, value: Any) -> None:
        _KEPT_INPUT.__set__(self, value)


@dataclass(frozen=True)
class StatusView:
    """A status answer: the request's state as a client sees it now."""

    request_id: str
    endpoint_id: str
    app_id: str
    status: Status
    queue_position: int | None
    logs: list[JSON]
    metrics: JSON
    error: str | None
    error_type: str | None


def run_seconds(request: Request) -> float:
    """Seconds a timed or immediate request runs."""
    return request.policy.seconds_in(Status.IN_PROGRESS, request.units)


def log_line(message: str, at: float, level: str = "INFO", source: str = "USER") -> JSON:
    """One runner log entry as fal's status shows it."""
    return {"message": message, "level": level, "source": source, "timestamp": isoformat(at)}


def _progress(request: Request, now: float, *, everything: bool) -> float:
    """The share of its run (0 to 1 and beyond) a running request has reached by `now`."""
    policy = request.policy
    if everything:
        return 1.0
    if policy.kind == "timed":
        run = run_seconds(request)
        started = request.started_at if request.started_at is not None else now
        return (now - started) / run if run > 0 else 1.0
    if policy.kind == "polls":
        return request.polls / policy.polls
    return 0.0


def reveal_logs(request: Request, now: float, *, everything: bool = False) -> bool:
    """Append the script lines whose share of the run has elapsed by `now`; True if any were added."""
    started = request.started_at if request.started_at is not None else now
    policy = request.policy
    progress = _progress(request, now, everything=everything)
    added = False
    while len(request.logs) < len(request.script):
        fraction, message, *labels = request.script[len(request.logs)]
        if fraction > progress:
            break
        at = started + fraction * run_seconds(request) if policy.kind == "timed" else now
        request.logs.append(log_line(message, min(at, now), *labels))
        added = True
    return added


def result_bytes(outcome: Outcome) -> int:
    """The size of a result as a client downloads it (JSON bytes), for the retention window."""
    try:
        return len(jsontext.dumps(outcome.body).encode())
    except (TypeError, ValueError):
        return LARGE_RESULT_BYTES


def ready_at(request: Request) -> float | None:
    """When a queued request may start by its policy (None: not by time, and not yet by polls)."""
    policy = request.policy
    if policy.kind == "immediate" or (policy.kind == "polls" and request.polls >= policy.polls):
        return request.entered_at
    if policy.kind == "timed":
        return request.entered_at + policy.queue_seconds
    return None


def finish_at(request: Request) -> float | None:
    """When a running request finishes by time (None: by polls or by hand)."""
    if request.started_at is None or request.policy.kind not in ("timed", "immediate"):
        return None
    return request.started_at + run_seconds(request)


def unchanged_by_poll(request: Request, now: float, poll: bool) -> bool:
    """Would a status read at `now` (a `poll` or not) leave the request as stored? (Events due aside.)"""
    if request.status is Status.COMPLETED:
        return True
    if poll and request.policy.kind == "polls":
        return False
    if request.status is Status.IN_PROGRESS:  # does it reach a new log line by now?
        shown = len(request.logs)
        return shown >= len(request.script) or request.script[shown][0] > _progress(request, now, everything=False)
    return True


def status_view(request: Request, now: float, position: int | None) -> StatusView:
    """The status answer for `request` at `now`; `position` is its queue position while IN_QUEUE."""
    completed = request.status is Status.COMPLETED
    metrics: JSON = {}
    if completed and request.metrics is not None:
        metrics = dict(request.metrics)  # a replayed request's recorded metrics
    elif completed and request.started_at is not None:
        metrics["inference_time"] = round((request.completed_at or now) - request.started_at, 3)
    return StatusView(
        request_id=request.request_id,
        endpoint_id=request.endpoint_id,
        app_id=request.app_id,
        status=request.status,
        queue_position=position if request.status is Status.IN_QUEUE else None,
        logs=list(request.logs),
        metrics=metrics,
        error=request.outcome.error if completed else None,
        error_type=request.outcome.error_type if completed else None,
    )
