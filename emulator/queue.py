"""The request lifecycle: fal's queue states, transitions as data, and progression policies.

This module is the emulator's core and imports no HTTP code. A request moves

    IN_QUEUE --start--> IN_PROGRESS --finish--> COMPLETED
    IN_QUEUE --cancel-> COMPLETED          (never runs; completes as `client_cancelled`)
    IN_PROGRESS --cancel-> COMPLETED       (the emulated runner honours the cancel)
    IN_QUEUE --expire--> COMPLETED         (its start deadline passed: 504 `request_timeout`, type `user`)

and a failed request is COMPLETED with an error outcome: fal has no FAILED status
(https://fal.ai/docs/documentation/model-apis/inference/queue.md).

When a request takes its next step is a `Policy`: `immediate`, after N status polls (`polls:N`),
after T seconds of the injected clock (`timed:Q,R`), or `manual` (only `Queue.step`). Progression is
lazy: the state is brought up to date whenever a request is read, so no background task is needed.

A runner may need time of its own to produce the output (the emulator renders MP4s): `Queue.finish_gate`,
when set, is consulted whenever a request IN_PROGRESS is brought up to date and before it takes its
`finish` step; it holds the request IN_PROGRESS until the output exists, whatever the policy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Protocol, TypeVar

from fal_emulator.clock import Clock, isoformat
from fal_emulator.errors import FalError, RequestNotFound, ResultNotReady, client_cancelled, start_timeout
from fal_emulator.ids import IdSource

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


@dataclass(frozen=True)
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
    def error(self) -> str | None:
        """The human-readable `error` a COMPLETED status shows (None on success)."""
        return None if self.ok else FalError(self.body, status_code=self.status_code, headers=self.headers).message

    @property
    def error_type(self) -> str | None:
        if self.ok:
            return None
        error_type = self.headers.get("X-Fal-Error-Type") or self.body.get("error_type")
        return str(error_type) if error_type else None


@dataclass
class Request:
    """One submitted request and everything the queue knows about it."""

    request_id: str
    endpoint_id: str
    app_id: str
    input: JSON
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
    closing_line: bool = True  # end the logs with the emulator's own line (`Request completed.`, …)
    metrics: JSON | None = None  # the COMPLETED status's `metrics` as given (a replayed request), else computed


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


class Store(Protocol):
    """Where requests live. The in-memory store is the default (`fal_emulator.store.MemoryStore`)."""

    def add(self, request: Request) -> None: ...
    def get(self, request_id: str) -> Request | None: ...
    def all(self) -> list[Request]: ...
    def save(self, request: Request) -> None: ...
    def next_sequence(self) -> int: ...
    def schedule(self, request: Request, at: float) -> None: ...
    def due(self, now: float) -> list[Request]: ...
    def queue_position(self, request: Request) -> int: ...
    def queued_count(self, app_id: str) -> int: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def reset(self) -> None: ...


Method = TypeVar("Method", bound=Callable[..., Any])


def transactional(method: Method) -> Method:
    """Run a Queue method inside one store transaction (several processes may share a store)."""

    @functools.wraps(method)
    def wrapper(self: Queue, *args: Any, **kwargs: Any) -> Any:
        with self.store.transaction():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class FinishGate(Protocol):
    """The runner's say in when a running request may finish (`Queue.finish_gate`).

    Called with a request IN_PROGRESS and the clock's time (POSIX seconds) whenever the request is brought
    up to date (so the runner can start its work as the request starts), and before its `finish` step.
    Returns None while the output does not exist yet (the request stays IN_PROGRESS), else
    `(outcome, ready_at)`: the outcome to complete with (e.g. the planned one with the output file's exact
    `file_size`) and the clock time from which it may finish (0.0: any time). Must not raise.
    Only a successful planned outcome is gated: cancel, expiry and an explicit outcome (`fail_now`) are not.
    """

    def __call__(self, request: Request, now: float) -> tuple[Outcome, float] | None: ...


def _log(message: str, at: float, level: str = "INFO", source: str = "USER") -> JSON:
    return {"message": message, "level": level, "source": source, "timestamp": isoformat(at)}


class Queue:
    """Submit, observe, cancel and step requests. All times come from `clock`."""

    def __init__(self, store: Store, clock: Clock, ids: IdSource, policy: Policy) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.policy = policy
        self.finish_gate: FinishGate | None = None  # see FinishGate; None: a request finishes when its policy says

    @transactional
    def submit(
        self,
        endpoint_id: str,
        app_id: str,
        input_: JSON,
        outcome: Outcome,
        *,
        policy: Policy | None = None,
        units: float = 1.0,
        script: Sequence[tuple[Any, ...]] = (),
        start_timeout: float | None = None,
        webhook_url: str | None = None,
        scenario: str | None = None,
        closing_line: bool = True,
        metrics: JSON | None = None,
    ) -> StatusView:
        """Enqueue a request; returns its state as submitted (IN_QUEUE, with its queue position).

        `script` is the runner's log lines as (fraction of the run, message), or (fraction, message, level,
        source), revealed while IN_PROGRESS. `closing_line` False leaves out the emulator's own last line, and
        `metrics` replaces the computed ones once COMPLETED (both for a replayed recording, whose script is whole).
        `units` scales the run time of timed policies (the emulator passes seconds of video).
        `start_timeout` (seconds): if the request has not started by then it completes as a 504
        `request_timeout` with `X-Fal-Request-Timeout-Type: user` (fal's `X-Fal-Request-Timeout` header).
        `scenario` is kept with the request for the control plane (the tokens it was submitted with).
        """
        now = self.clock.now()
        sequence = self.store.next_sequence()
        request = Request(
            request_id=self.ids.for_sequence(sequence),
            endpoint_id=endpoint_id,
            app_id=app_id,
            input=input_,
            outcome=outcome,
            policy=policy or self.policy,
            submitted_at=now,
            entered_at=now,
            sequence=sequence,
            units=units,
            script=tuple(script),
            start_deadline=None if start_timeout is None else now + start_timeout,
            webhook_url=webhook_url,
            scenario=scenario,
            closing_line=closing_line,
            metrics=metrics,
        )
        self.store.add(request)
        self._schedule(request)
        view = self._view(request, now)
        if request.policy.kind == "immediate":
            self._progress(request, now)
        return view

    @transactional
    def status(self, request_id: str, *, poll: bool = True, app_id: str | None = None) -> StatusView:
        """The request's state now. A `poll` counts towards a `polls:N` policy.

        Raises RequestNotFound for an unknown id (or, given `app_id`, one submitted to another app).
        """
        request = self._load(request_id, app_id)
        now = self.clock.now()
        self._progress(request, now)
        view = self._view(request, now)
        if poll and request.status is not Status.COMPLETED:
            request.polls += 1
            self.store.save(request)
            self._progress(request, now)
        return view

    @transactional
    def result(self, request_id: str, *, app_id: str | None = None) -> Outcome:
        """The stored outcome. Raises RequestNotFound, or ResultNotReady before COMPLETED."""
        request = self._load(request_id, app_id)
        self._progress(request, self.clock.now())
        if request.status is not Status.COMPLETED:
            raise ResultNotReady(request_id)
        return request.outcome

    @transactional
    def cancel(
        self, request_id: str, *, app_id: str | None = None
    ) -> Literal["CANCELLATION_REQUESTED", "ALREADY_COMPLETED"]:
        """Cancel a request. A queued one never runs; a running one stops. Both complete as cancelled.

        Raises RequestNotFound for an unknown id.
        """
        request = self._load(request_id, app_id)
        now = self.clock.now()
        self._progress(request, now)
        if request.status is Status.COMPLETED:
            return "ALREADY_COMPLETED"
        request.outcome = Outcome.failure(client_cancelled())
        request.metrics = None  # a replayed request's metrics were those of its recorded run
        self._enter(request, "cancel", now)
        return "CANCELLATION_REQUESTED"

    @transactional
    def complete_now(self, request_id: str, outcome: Outcome | None = None) -> StatusView:
        """Complete a request now, with `outcome` (or its planned one). Raises RequestNotFound, InvalidTransition."""
        request = self._load(request_id)
        now = self.clock.now()
        self._progress(request, now)
        if request.status is Status.COMPLETED:
            raise InvalidTransition(f"request {request_id} is already COMPLETED")
        if outcome is not None:
            request.outcome = outcome
        if request.status is Status.IN_QUEUE:  # through IN_PROGRESS, so it has run (for 0 s)
            self._enter(request, "start", now)
        if outcome is not None or self._output_ready(request, now):
            self._enter(request, "finish", now)
        return self._view(request, now)

    @transactional
    def step(self, request_id: str) -> StatusView:
        """Move a request one state on now, whatever its policy. Raises RequestNotFound, InvalidTransition."""
        request = self._load(request_id)
        now = self.clock.now()
        self._progress(request, now)
        if request.status is Status.COMPLETED:
            raise InvalidTransition(f"request {request_id} is already COMPLETED")
        if request.status is Status.IN_QUEUE or self._output_ready(request, now):
            self._enter(request, PROGRESS_EVENT[request.status], now)
        return self._view(request, now)

    # -- internals -----------------------------------------------------------------------------

    def _load(self, request_id: str, app_id: str | None = None) -> Request:
        """The request, read once. Raises RequestNotFound for an unknown id, or one of another app."""
        request = self.store.get(request_id)
        if request is None or (app_id is not None and request.app_id != app_id):
            raise RequestNotFound(request_id)
        return request

    def _due_at(self, request: Request) -> float | None:
        """When the request takes its next step by its policy: a time, or None if not due by time."""
        policy = request.policy
        if policy.kind == "immediate":
            return request.entered_at
        if policy.kind == "timed":
            return request.entered_at + policy.seconds_in(request.status, request.units)
        if policy.kind == "polls" and request.polls >= policy.polls:
            return request.entered_at
        return None

    def _progress(self, request: Request, now: float) -> None:
        changed = False
        while request.status is not Status.COMPLETED:
            due = self._due_at(request)
            deadline = request.start_deadline if request.status is Status.IN_QUEUE else None
            if deadline is not None and deadline <= now and (due is None or due > deadline):
                request.outcome = Outcome.failure(start_timeout())
                self._enter(request, "expire", deadline, save=False)
                changed = True
                break
            at = max(due, request.entered_at) if due is not None else None
            if request.status is Status.IN_PROGRESS and self.finish_gate is not None and request.outcome.ok:
                ready = self.finish_gate(request, now)
                if ready is None:
                    break  # the runner's output does not exist yet
                if at is not None and at <= now:
                    request.outcome = ready[0]
                    at = min(max(at, ready[1]), now)
            if at is None or at > now:
                break
            self._enter(request, PROGRESS_EVENT[request.status], at, save=False)
            changed = True
        if request.status is Status.IN_PROGRESS:
            changed |= self._reveal_logs(request, now)
        if changed:
            self.store.save(request)

    def _output_ready(self, request: Request, now: float) -> bool:
        """For a forced finish (`step`, `complete_now`): True when the finish gate lets the request finish now
        (filling in its outcome). Otherwise the request is marked to finish as soon as its output exists."""
        if self.finish_gate is None or not request.outcome.ok:
            return True
        ready = self.finish_gate(request, now)
        if ready is None:
            request.policy = PRESETS["immediate"]
            self.store.save(request)
            return False
        request.outcome = ready[0]
        return True

    def _run_seconds(self, request: Request) -> float:
        return request.policy.seconds_in(Status.IN_PROGRESS, request.units)

    def _reveal_logs(self, request: Request, now: float, *, everything: bool = False) -> bool:
        """Append the script lines whose share of the run has elapsed; True if any were added."""
        started = request.started_at if request.started_at is not None else now
        policy = request.policy
        if everything:
            progress = 1.0
        elif policy.kind == "timed":
            run = self._run_seconds(request)
            progress = (now - started) / run if run > 0 else 1.0
        elif policy.kind == "polls":
            progress = request.polls / policy.polls
        else:
            progress = 0.0
        added = False
        while len(request.logs) < len(request.script):
            fraction, message, *labels = request.script[len(request.logs)]
            if fraction > progress:
                break
            at = started + fraction * self._run_seconds(request) if policy.kind == "timed" else now
            request.logs.append(_log(message, min(at, now), *labels))
            added = True
        return added

    def _enter(self, request: Request, event: Event, at: float, *, save: bool = True) -> None:
        previous = request.status
        request.status = next_status(previous, event)
        request.entered_at = at
        request.polls = 0
        if request.status is Status.IN_PROGRESS:
            request.started_at = at
            self._reveal_logs(request, at)
            if self.finish_gate is not None and request.outcome.ok:
                self.finish_gate(request, at)  # the runner starts its work as the request starts
        elif request.status is Status.COMPLETED:
            request.completed_at = at
            if previous is Status.IN_PROGRESS and not request.closing_line:
                self._reveal_logs(request, at, everything=event == "finish")
            elif previous is Status.IN_PROGRESS:
                if event == "finish" and request.outcome.ok:
                    self._reveal_logs(request, at, everything=True)
                    request.logs.append(_log("Request completed.", at))
                elif event == "finish":
                    request.logs.append(_log(f"Request failed: {request.outcome.error}", at, level="ERROR"))
                else:
                    request.logs.append(_log("Request cancelled.", at))
        if save:
            self.store.save(request)

    def reschedule(self, request: Request) -> None:
        """Call after changing a request's policy: its time to leave the queue may have changed."""
        self._schedule(request)

    def _schedule(self, request: Request) -> None:
        """Register when a queued request may leave the queue by time (its start, or its deadline)."""
        if request.status is not Status.IN_QUEUE:
            return
        for at in (self._due_at(request) if request.policy.kind == "timed" else None, request.start_deadline):
            if at is not None:
                self.store.schedule(request, at)

    def wake(self, now: float) -> None:
        """Bring up to date every request whose time to leave the queue has come."""
        for request in self.store.due(now):
            self._progress(request, now)

    @transactional
    def queued_count(self, app_id: str) -> int:
        """Requests of `app_id` waiting in the queue now."""
        self.wake(self.clock.now())
        return self.store.queued_count(app_id)

    def _queue_position(self, request: Request, now: float) -> int:
        self.wake(now)
        return self.store.queue_position(request)

    def _view(self, request: Request, now: float) -> StatusView:
        queued = request.status is Status.IN_QUEUE
        metrics: JSON = {}
        if request.status is Status.COMPLETED and request.metrics is not None:
            metrics = dict(request.metrics)
        elif request.status is Status.COMPLETED and request.started_at is not None:
            metrics["inference_time"] = round((request.completed_at or now) - request.started_at, 3)
        return StatusView(
            request_id=request.request_id,
            endpoint_id=request.endpoint_id,
            app_id=request.app_id,
            status=request.status,
            queue_position=self._queue_position(request, now) if queued else None,
            logs=list(request.logs),
            metrics=metrics,
            error=request.outcome.error if request.status is Status.COMPLETED else None,
            error_type=request.outcome.error_type if request.status is Status.COMPLETED else None,
        )
