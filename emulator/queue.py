"""The queue: requests move through fal's lifecycle (`fal_emulator.lifecycle`) on the account's runners.

When a request may take its next step is its `Policy`: `immediate`, after N status polls (`polls:N`),
after T seconds of the injected clock (`timed:Q,R`), or `manual` (only `Queue.step`). A queued request
whose policy lets it start is *ready*; it starts when a runner is free. The runners are the account's
concurrency limit (`concurrency`, None: unlimited), shared by every endpoint as fal's limit is
(https://fal.ai/docs/documentation/model-apis/concurrency-limits.md). Ready requests take a freed runner
in queue order: every `normal` request before any `low` one (`X-Fal-Queue-Priority`,
https://fal.ai/docs/documentation/model-apis/common-parameters.md), then by submit order. A request's
`queue_position` counts the requests of its app ahead of it in that order. A completed request is
forgotten after the `Retention` window (https://fal.ai/docs/inference-api/queue/result).

Progression is lazy: every queue operation first plays out, in time order, every timed event due by the
injected clock (a request becomes ready, a run finishes, a start deadline passes, a result expires),
starting queued requests on the runners those events free. No background task moves a request, so a
frozen clock freezes everything and `advance()` plays the queue out exactly.

A runner may need time of its own to produce the output (the emulator renders MP4s): `Queue.finish_gate`,
when set, is consulted as a request starts, whenever a running request is looked at, and before it takes
its `finish` step; it holds the request IN_PROGRESS, and its runner busy, until the output exists.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, TypeVar

from fal_emulator.clock import Clock
from fal_emulator.errors import FalError, RequestNotFound, ResultNotReady, client_cancelled, start_timeout
from fal_emulator.ids import IdSource
from fal_emulator.lifecycle import (
    JSON,
    LARGE_RESULT_BYTES,
    PRESETS,
    PRIORITY_RANK,
    RANK,
    TRANSITIONS,
    Event,
    InvalidTransition,
    Outcome,
    Policy,
    PolicyKind,
    Priority,
    Request,
    Retention,
    Status,
    StatusView,
    finish_at,
    log_line,
    next_status,
    order_key,
    ready_at,
    result_bytes,
    reveal_logs,
    status_view,
    unchanged_by_poll,
)
from fal_emulator.store import Store, WakeupKind

__all__ = [  # the lifecycle's names stay importable from here
    "JSON", "LARGE_RESULT_BYTES", "PRESETS", "PRIORITY_RANK", "RANK", "TRANSITIONS", "Event", "InvalidTransition",
    "Outcome", "Policy", "PolicyKind", "Priority", "Queue", "Request", "Retention", "Status", "StatusView", "Store",
    "next_status", "order_key",
]  # fmt: skip


Method = TypeVar("Method", bound=Callable[..., Any])


def transactional(method: Method) -> Method:
    """Run a Queue method inside one store transaction (several processes may share a store).

    An answer that is an error (an unknown request, a result not ready, an invalid step) still commits:
    the events the operation played out before it are kept.
    """

    @functools.wraps(method)
    def wrapper(self: Queue, *args: Any, **kwargs: Any) -> Any:
        answer: Exception | None = None
        with self.store.transaction():
            try:
                return method(self, *args, **kwargs)
            except (FalError, ValueError) as exc:
                answer = exc
        assert answer is not None
        raise answer

    return wrapper  # type: ignore[return-value]


class FinishGate(Protocol):
    """The runner's say in when a running request may finish (`Queue.finish_gate`).

    Called with a request IN_PROGRESS and the clock's time (POSIX seconds) as the request starts (so the
    runner can begin its work), whenever a running request is looked at, and before its `finish` step.
    Returns None while the output does not exist yet (the request stays IN_PROGRESS, holding its runner),
    else `(outcome, ready_at)`: the outcome to complete with (e.g. the planned one with the output file's
    exact `file_size`) and the clock time from which it may finish (0.0: any time). Must not raise.
    Only a successful planned outcome is gated: cancel, expiry and an explicit outcome (`fail_now`) are not.
    """

    def __call__(self, request: Request, now: float) -> tuple[Outcome, float] | None: ...


class Queue:
    """Submit, observe, cancel and step requests, and run them on `concurrency` runners (None: as many as
    are ready). All times come from `clock`."""

    def __init__(
        self, store: Store, clock: Clock, ids: IdSource, policy: Policy, *,
        concurrency: int | None = None, retention: Retention | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.clock = clock
        self.ids = ids
        self.policy = policy
        self.retention = retention or Retention()
        self._concurrency = concurrency
        self._check_runners = True  # look for ready requests and free runners at the next operation
        self.finish_gate: FinishGate | None = None  # None: a request finishes when its policy says

    @property
    def concurrency(self) -> int | None:
        """Runners of the account: how many requests may be IN_PROGRESS at once (None: no limit)."""
        return self._concurrency

    @concurrency.setter
    def concurrency(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"concurrency must be at least 1 (or None for no limit), got {limit}")
        self._concurrency = limit
        self._check_runners = True

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
        priority: Priority = "normal",
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
        `priority` is `normal` or `low` (`X-Fal-Queue-Priority`); raises ValueError for anything else.
        `scenario` is kept with the request for the control plane (the tokens it was submitted with).
        """
        if priority not in PRIORITY_RANK:
            raise ValueError(f"priority must be 'normal' or 'low', got {priority!r}")
        now = self.clock.now()
        self._wake(now)
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
            priority=priority,
            scenario=scenario,
            closing_line=closing_line,
            metrics=metrics,
        )
        if request.start_deadline is not None:
            self.store.schedule(request, request.start_deadline, "deadline")
        self._arm(request, now)
        self.store.add(request)
        view = self._view(request, now)
        if request.ready:
            self._dispatch(now, request)
        return view

    def status(self, request_id: str, *, poll: bool = True, app_id: str | None = None) -> StatusView:
        """The request's state now. A `poll` counts towards a `polls:N` policy.

        Raises RequestNotFound for an unknown id (or, given `app_id`, one submitted to another app).
        When no event is due and the poll changes nothing, the answer is read without the store's lock.
        """
        now = self.clock.now()
        if app_id is not None and not self._check_runners:
            seen = self.store.read_idle(request_id, app_id, now)
            gated = self.finish_gate is not None and seen is not None and seen[0].status is Status.IN_PROGRESS
            if seen is not None and not gated and unchanged_by_poll(seen[0], now, poll):
                return self._view(seen[0], now, position=seen[1])
        return self._status(request_id, now, poll, app_id)

    @transactional
    def _status(self, request_id: str, now: float, poll: bool, app_id: str | None) -> StatusView:
        self._wake(now)
        request = self._load(request_id, app_id)
        self._settle(request, now)
        self._reveal(request, now)
        view = self._view(request, now)
        if poll and request.status is not Status.COMPLETED:
            self._polled(request, now)
        return view

    @transactional
    def result(self, request_id: str, *, app_id: str | None = None) -> Outcome:
        """The stored outcome. Raises RequestNotFound, or ResultNotReady before COMPLETED."""
        now = self.clock.now()
        self._wake(now)
        request = self._load(request_id, app_id)
        self._settle(request, now)
        if request.status is not Status.COMPLETED:
            raise ResultNotReady(request_id)
        return request.outcome

    @transactional
    def cancel(
        self, request_id: str, *, app_id: str | None = None
    ) -> Literal["CANCELLATION_REQUESTED", "ALREADY_COMPLETED"]:
        """Cancel a request. A queued one never runs; a running one stops and frees its runner. Both
        complete as cancelled. Raises RequestNotFound for an unknown id.
        """
        now = self.clock.now()
        self._wake(now)
        request = self._load(request_id, app_id)
        self._settle(request, now)
        if request.status is Status.COMPLETED:
            return "ALREADY_COMPLETED"
        self._reveal(request, now)
        request.outcome = Outcome.failure(client_cancelled())
        request.metrics = None  # a replayed request's metrics were those of its recorded run
        running = request.status is Status.IN_PROGRESS
        self._enter(request, "cancel", now)
        if running:
            self._dispatch(now)
        return "CANCELLATION_REQUESTED"

    @transactional
    def complete_now(self, request_id: str, outcome: Outcome | None = None) -> StatusView:
        """Complete a request now, with `outcome` (or its planned one), whatever the runners; with its planned
        one, as soon as the runner's output exists (`finish_gate`). Raises RequestNotFound, InvalidTransition."""
        now = self.clock.now()
        self._wake(now)
        request = self._load(request_id)
        if request.status is Status.COMPLETED:
            raise InvalidTransition(f"request {request_id} is already COMPLETED")
        if outcome is not None:
            request.outcome = outcome
        if request.status is Status.IN_QUEUE:  # through IN_PROGRESS, so it has run (for 0 s)
            self._start(request, now)
        if outcome is not None:  # an explicit outcome is not the runner's: no gate
            self._enter(request, "finish", now)
        else:
            self._finish_when_ready(request, now)
        self._dispatch(now)
        return self._view(request, now)

    @transactional
    def step(self, request_id: str) -> StatusView:
        """Move a request one state on now, whatever its policy and the runners (a queued request starts
        even when every runner is busy; a running one finishes as soon as its output exists). Raises
        RequestNotFound, InvalidTransition."""
        now = self.clock.now()
        self._wake(now)
        request = self._load(request_id)
        self._settle(request, now)
        if request.status is Status.COMPLETED:
            raise InvalidTransition(f"request {request_id} is already COMPLETED")
        if request.status is Status.IN_QUEUE:
            if request.policy.kind == "immediate":  # it completes at the next look, as if it had run
                self.store.schedule(request, now, "finish")
            self._start(request, now)
        else:
            self._finish_when_ready(request, now)
            self._dispatch(now)
        return self._view(request, now)

    @transactional
    def set_policy(self, request_id: str, policy: Policy) -> StatusView:
        """Give one request a new policy from now on. Raises RequestNotFound."""
        now = self.clock.now()
        self._wake(now)
        request = self._load(request_id)
        request.policy = policy
        if request.status is not Status.COMPLETED:
            self._arm(request, now)
            self.store.save(request)
            self._dispatch(now, request)
        return self._view(request, now)

    def reschedule(self, request: Request) -> None:
        """Call after changing `request.policy`: its times to move on follow the new policy."""
        self.set_policy(request.request_id, request.policy)

    @transactional
    def queued_count(self, app_id: str) -> int:
        """Requests of `app_id` waiting in the queue now."""
        self._wake(self.clock.now())
        return self.store.queued_count(app_id)

    @transactional
    def at_capacity(self) -> bool:
        """Is every runner busy now? (Never, without a concurrency limit.)"""
        self._wake(self.clock.now())
        return self._concurrency is not None and self.store.running_count() >= self._concurrency

    @transactional
    def running_count(self) -> int:
        """Requests IN_PROGRESS now (each holds a runner)."""
        self._wake(self.clock.now())
        return self.store.running_count()

    @transactional
    def wake(self, now: float) -> None:
        """Play out every timed event due by `now` (normally each operation does this first)."""
        self._wake(now)

    # -- the runners -------------------------------------------------------------------------------

    def _wake(self, now: float) -> None:
        """Play out the events due by `now` in time order; each one that frees a runner or readies a
        request starts the next ready requests at its own time."""
        if self._check_runners:
            self._check_runners = False
            self._dispatch(now, everything=True)
        while (wakeup := self.store.next_due(now)) is not None:
            if wakeup.request is not None and (at := self._fire(wakeup.kind, wakeup.request, wakeup.at)):
                self._dispatch(at, wakeup.request)

    def _fire(self, kind: WakeupKind, request: Request, at: float) -> float | None:
        """Apply one due event, if it still applies; the time from which it may let a ready request start
        (None: it cannot)."""
        if kind == "finish" and request.status is Status.IN_PROGRESS:
            finishes = finish_at(request)
            if finishes is not None and finishes > at:  # woken early (a changed policy): wait on
                self.store.schedule(request, finishes, "finish")
            elif finishes is not None and self._finish(request, at, due=finishes):
                return request.completed_at
        elif kind == "ready" and request.status is Status.IN_QUEUE and not request.ready:
            readies = ready_at(request)
            if readies is not None and readies > at:
                self.store.schedule(request, readies, "ready")
            elif readies is not None:
                request.ready = True
                self.store.save(request)
                return at
        elif kind == "deadline":
            deadline = request.start_deadline
            if request.status is Status.IN_QUEUE and deadline is not None and deadline <= at:
                request.outcome = Outcome.failure(start_timeout())
                self._enter(request, "expire", at)
        elif request.status is Status.COMPLETED and request.expires_at is not None and request.expires_at <= at:
            self.store.delete(request)
        return None

    def _dispatch(self, at: float, changed: Request | None = None, *, everything: bool = False) -> None:
        """Start ready requests, in queue order, while a runner is free. `changed` is the request that has
        just become ready or freed its runner. Without a limit no request ever waits for a runner, so only
        `changed` can be ready (a full look is made when the limit changes: `everything`)."""
        limit = self._concurrency
        if limit is None and not everything:
            if changed is not None and changed.ready and changed.status is Status.IN_QUEUE:
                self._run(changed, at)
            return
        while limit is None or self.store.running_count() < limit:
            request = self.store.first_ready()
            if request is None:
                return
            self._run(changed if changed is not None and changed.request_id == request.request_id else request, at)

    def _run(self, request: Request, at: float) -> None:
        """Start a ready request on a free runner (an immediate one completes as it starts)."""
        self._start(request, at)
        if request.policy.kind == "immediate":
            self._finish(request, at)

    def _arm(self, request: Request, now: float) -> None:
        """Set `ready` and schedule the policy's next timed step (call before saving the request)."""
        if request.status is Status.IN_QUEUE:
            readies = ready_at(request)
            request.ready = readies is not None and readies <= now
            if readies is not None and not request.ready:
                self.store.schedule(request, readies, "ready")
        elif request.status is Status.IN_PROGRESS:
            finishes = finish_at(request)
            if finishes is not None:
                self.store.schedule(request, max(finishes, now), "finish")

    def _polled(self, request: Request, now: float) -> None:
        """A status poll: a `polls:N` request counts it and moves on after N of them (other policies do not
        count polls, and nothing is written for them)."""
        policy = request.policy
        if policy.kind != "polls":
            return
        request.polls += 1
        due = request.polls >= policy.polls
        if request.status is Status.IN_QUEUE and due and not request.ready:
            request.ready = True
            self.store.save(request)
            self._dispatch(now, request)
        elif request.status is Status.IN_PROGRESS and due:
            if self._finish(request, now):
                self._dispatch(now, request)
            else:
                self.store.save(request)
        else:
            reveal_logs(request, now)
            self.store.save(request)

    def _start(self, request: Request, at: float) -> None:
        request.ready = False
        self._enter(request, "start", at)

    def _finish(self, request: Request, at: float, *, due: float | None = None) -> bool:
        """Finish a running request at `at` (POSIX seconds), unless the runner's output does not exist yet
        (`finish_gate`): then it stays IN_PROGRESS, holding its runner, is looked at again at the next
        operation after the clock moves (and whenever it is read), and this returns False. A gated request
        finishes when its policy was done (`due`, else `at`) or, if later, when its output was ready; never
        after now."""
        if self.finish_gate is not None and request.outcome.ok:
            now = max(at, self.clock.now())
            ready = self.finish_gate(request, now)
            if ready is None:
                self.store.schedule(request, math.nextafter(now, math.inf), "finish")
                return False
            request.outcome = ready[0]
            at = min(max(at if due is None else due, ready[1]), now)
        self._enter(request, "finish", at)
        return True

    def _finish_when_ready(self, request: Request, now: float) -> None:
        """A forced finish (`step`, `complete_now`): now, or as soon as the runner's output exists."""
        if not self._finish(request, now):
            request.policy = PRESETS["immediate"]
            self.store.save(request)

    def _settle(self, request: Request, now: float) -> None:
        """A running request being looked at, with a finish gate: its runner's work goes on (or resumes, after
        a restart), and once its policy says it is done it finishes as soon as its output exists."""
        if request.status is not Status.IN_PROGRESS or self.finish_gate is None or not request.outcome.ok:
            return
        policy = request.policy
        due = now if policy.kind == "polls" and request.polls >= policy.polls else finish_at(request)
        if due is None or due > now:
            self.finish_gate(request, now)
        elif self._finish(request, due):
            self._dispatch(now, request)

    # -- transitions ---------------------------------------------------------------------------

    def _load(self, request_id: str, app_id: str | None = None) -> Request:
        """The request, read once. Raises RequestNotFound for an unknown id, or one of another app."""
        request = self.store.get(request_id)
        if request is None or (app_id is not None and request.app_id != app_id):
            raise RequestNotFound(request_id)
        return request

    def _reveal(self, request: Request, now: float) -> None:
        """Show the log lines a running request has reached by `now` (saved only when there are new ones)."""
        if request.status is Status.IN_PROGRESS and reveal_logs(request, now):
            self.store.save(request)

    def _enter(self, request: Request, event: Event, at: float) -> None:
        """Apply `event` at time `at`, schedule what follows from the new state, then save."""
        previous = request.status
        request.status = next_status(previous, event)
        request.entered_at = at
        request.polls = 0
        if request.status is Status.IN_PROGRESS:
            request.started_at = at
            reveal_logs(request, at)
            if self.finish_gate is not None and request.outcome.ok:
                self.finish_gate(request, at)  # the runner starts its work as the request starts
            finishes = finish_at(request)
            if finishes is not None and request.policy.kind == "timed":
                self.store.schedule(request, finishes, "finish")
        elif request.status is Status.COMPLETED:
            request.ready = False
            request.completed_at = at
            if previous is Status.IN_PROGRESS and not request.closing_line:
                reveal_logs(request, at, everything=event == "finish")
            elif previous is Status.IN_PROGRESS:
                if event == "finish" and request.outcome.ok:
                    reveal_logs(request, at, everything=True)
                    request.logs.append(log_line("Request completed.", at))
                elif event == "finish":
                    request.logs.append(log_line(f"Request failed: {request.outcome.error}", at, level="ERROR"))
                else:
                    request.logs.append(log_line("Request cancelled.", at))
            keep = self.retention.after(result_bytes(request.outcome))
            if keep is not None:
                request.expires_at = at + keep
                self.store.schedule(request, request.expires_at, "expire")
        self.store.save(request)

    def _view(self, request: Request, now: float, *, position: int | None = None) -> StatusView:
        if request.status is Status.IN_QUEUE and position is None:
            position = self.store.queue_position(request)
        return status_view(request, now, position)
