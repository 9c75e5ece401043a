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
its `finish` step; it holds the request IN_PROGRESS, and its runner busy, until the output exists. The
mechanics of the runners are `fal_emulator.runners`; this module is the operations a client and the
control plane call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from fal_emulator.clock import Clock
from fal_emulator.errors import FalError, ResultNotReady, client_cancelled
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
    next_status,
    order_key,
    unchanged_by_poll,
)
from fal_emulator.runners import FinishGate, Runners
from fal_emulator.store import Store

__all__ = [  # the lifecycle's names stay importable from here
    "JSON", "LARGE_RESULT_BYTES", "PRESETS", "PRIORITY_RANK", "RANK", "TRANSITIONS", "Event", "InvalidTransition",
    "Outcome", "Policy", "PolicyKind", "Priority", "Queue", "Request", "Retention", "Status", "StatusView", "Store",
    "FinishGate", "next_status", "order_key",
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


class Queue(Runners):
    """Submit, observe, cancel and step requests, and run them on `concurrency` runners (None: as many as
    are ready). All times come from `clock`."""

    def __init__(
        self, store: Store, clock: Clock, ids: IdSource, policy: Policy, *,
        concurrency: int | None = None, retention: Retention | None = None,
    ) -> None:  # fmt: skip
        super().__init__(store, clock, concurrency=concurrency, retention=retention)
        self.ids = ids
        self.policy = policy

    @transactional
    def submit(
        self,
        endpoint_id: str,
        app_id: str,
        input_: Any,
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

        `input_` is any JSON value, or its JSON text as `bytes` (kept as text: see `Request.input`).
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
