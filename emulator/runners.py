"""The runners: how queued requests start, run and finish on the account's runners (`Runners`, the base of
`fal_emulator.queue.Queue`).

Every queue operation first plays out, in time order, the timed events due by the injected clock (`_wake`):
a request becomes ready, a run finishes, a start deadline passes, a result expires. An event that frees a
runner or readies a request starts the next ready requests, in queue order (every `normal` before any
`low`, then by submit), at that event's time (`_dispatch`). A runner's own work (the renderer) may hold a
request IN_PROGRESS, keeping its runner, until its output exists (`FinishGate`). State changes go through
`_enter`, which schedules what follows from the new state before saving it, so a store that writes each
save atomically with the wake-ups scheduled before it stays consistent when its process dies.
"""

from __future__ import annotations

import math
from typing import Protocol

from fal_emulator.clock import Clock
from fal_emulator.errors import RequestNotFound, start_timeout
from fal_emulator.lifecycle import (
    PRESETS,
    Event,
    Outcome,
    Request,
    Retention,
    Status,
    StatusView,
    finish_at,
    log_line,
    next_status,
    ready_at,
    result_bytes,
    reveal_logs,
    status_view,
)
from fal_emulator.store import Store, WakeupKind


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


class Runners:
    """The account's runners over `store`, on `clock`: `concurrency` of them (None: as many as are ready)."""

    def __init__(
        self, store: Store, clock: Clock, *, concurrency: int | None = None, retention: Retention | None = None
    ) -> None:
        self.store = store
        self.clock = clock
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
                    request.logs.append(log_line(f"Request failed: {request.outcome.message}", at, level="ERROR"))
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
