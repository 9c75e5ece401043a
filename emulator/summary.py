"""What a list of requests shows: one request's `Summary`, the filters a list takes (`SummaryQuery`) and the
`Totals` over every stored request, answered by each store without decoding every request.

A store keeps each request's summary beside it, written with the request (`summarize`), and indexes what lists
filter and count on: the status, the endpoint id, and the outcome (`ok`, or the error type once COMPLETED). So a
page of a list (`Store.summaries`) reads only that page's summaries, and the totals (`Store.totals`) are counts
and order statistics of indexed columns: the SQLite store answers both with indexed queries and aggregates, the
Redis store from sorted sets and sets its transition scripts keep, and the memory store, which holds requests
as objects, with one pass over them and no decoding (`page_of`, `totals_of`).

Times are POSIX seconds of the emulator's clock, durations seconds.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from fal_emulator import jsontext
from fal_emulator.lifecycle import Request, Status

# The input fields a request's price depends on (`fal_emulator.ui.prices`): a summary keeps these of its input.
PRICED_INPUTS = ("resolution", "duration", "generate_audio")
OK, FAILED = "ok", "error"  # `SummaryQuery.error_type` values: completed without an error, with any error
_ABSENT = object()


def error_label(error_type: str | None, status_code: int) -> str:
    """How lists name an error: its `error_type`, or `HTTP <status code>` when it names none (the runner's
    validation 422, as FastAPI answers it)."""
    return error_type or f"HTTP {status_code}"


@dataclass(frozen=True, slots=True)
class Summary:
    """A request as a list shows it. `status_code` once COMPLETED; `error_type` once COMPLETED with an error
    that names one; `policy` as `Policy.describe()` gives it; `priced`: the input's `PRICED_INPUTS` fields, None when
    the input is not a JSON object (fal's queue takes any JSON body; such an input names no video)."""

    request_id: str
    endpoint_id: str
    app_id: str
    sequence: int
    priority: str
    status: Status
    submitted_at: float
    started_at: float | None
    completed_at: float | None
    policy: str
    scenario: str | None
    status_code: int | None
    error_type: str | None
    priced: Mapping[str, Any] | None

    @property
    def outcome(self) -> str | None:
        """`ok`, the error type (`HTTP <status code>` when the error names none, as the runner's validation 422
        does), or None before COMPLETED: lists filter and count by it."""
        if self.status is not Status.COMPLETED:
            return None
        return OK if self.status_code == 200 else error_label(self.error_type, self.status_code or 0)

    @property
    def queue_seconds(self) -> float | None:
        """Seconds spent IN_QUEUE, once it left the queue (started, or completed without starting)."""
        left = self.started_at if self.started_at is not None else self.completed_at
        return None if left is None else left - self.submitted_at

    @property
    def run_seconds(self) -> float | None:
        """Seconds spent IN_PROGRESS, once it completed after starting."""
        if self.started_at is None or self.completed_at is None:
            return None
        return self.completed_at - self.started_at

    def priced_key(self) -> str:
        """`priced` as canonical JSON text: requests priced alike share it."""
        return jsontext.dumps(dict(sorted(self.priced.items()))) if self.priced else "{}"

    def to_json(self) -> str:
        return jsontext.dumps({
            "request_id": self.request_id, "endpoint_id": self.endpoint_id, "app_id": self.app_id,
            "sequence": self.sequence, "priority": self.priority, "status": self.status.value,
            "submitted_at": self.submitted_at, "started_at": self.started_at, "completed_at": self.completed_at,
            "policy": self.policy, "scenario": self.scenario, "status_code": self.status_code,
            "error_type": self.error_type, "priced": None if self.priced is None else dict(self.priced),
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Summary:
        """The summary `to_json` wrote. Raises ValueError, TypeError or KeyError for anything else."""
        fields: dict[str, Any] = jsontext.loads(text)
        return cls(**{**fields, "status": Status(fields["status"])})


def summarize(request: Request) -> Summary:
    """The request's summary now."""
    completed = request.status is Status.COMPLETED
    arguments = given if isinstance(given := request.input, Mapping) else None  # one decode of a kept text
    return Summary(
        request_id=request.request_id,
        endpoint_id=request.endpoint_id,
        app_id=request.app_id,
        sequence=request.sequence,
        priority=request.priority,
        status=request.status,
        submitted_at=request.submitted_at,
        started_at=request.started_at,
        completed_at=request.completed_at,
        policy=request.policy.describe(),
        scenario=request.scenario,
        status_code=request.outcome.status_code if completed else None,
        error_type=request.outcome.error_type if completed else None,
        priced=None if arguments is None else {name: arguments[name] for name in PRICED_INPUTS if name in arguments},
    )


class SummaryQuery(NamedTuple):
    """Which requests a list shows: by endpoint id, status, and `error_type`: `ok` (COMPLETED without an error),
    `error` (with any error), or one error type (`HTTP <status code>`: an error that names none). None: any."""

    endpoint_id: str | None = None
    status: Status | None = None
    error_type: str | None = None

    def matches(self, request: Request) -> bool:
        if self.endpoint_id is not None and request.endpoint_id != self.endpoint_id:
            return False
        if self.status is not None and request.status is not self.status:
            return False
        if self.error_type is None:
            return True
        if request.status is not Status.COMPLETED:
            return False
        if self.error_type in (OK, FAILED):
            return request.outcome.ok == (self.error_type == OK)
        outcome = request.outcome
        return not outcome.ok and error_label(outcome.error_type, outcome.status_code) == self.error_type


@dataclass(frozen=True)
class Totals:
    """Counts over every stored request: `by_status` (every status), `by_error_type` (COMPLETED with an error,
    most frequent first, then by name), `median_seconds` per state left (`IN_QUEUE`, `IN_PROGRESS`; None before
    any), `succeeded`: (endpoint id, priced inputs, count) of the requests COMPLETED without an error, and the
    `newest` request's id."""

    by_status: dict[str, int]
    by_error_type: dict[str, int]
    median_seconds: dict[str, float | None]
    succeeded: list[tuple[str, Mapping[str, Any], int]]
    newest: str | None

    @property
    def requests(self) -> int:
        return sum(self.by_status.values())


def ranked(counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts, most frequent first, then by name."""
    return dict(sorted(counts, key=lambda item: (-item[1], item[0])))


def page_of(
    newest_first: Iterable[Request], query: SummaryQuery, offset: int, limit: int | None
) -> tuple[list[Summary], int]:
    """The summaries of the requests `query` matches, from `offset` (at most `limit`; None: all), and how many
    match: one pass, only the page summarized."""
    chosen: list[Summary] = []
    total = 0
    end = None if limit is None else offset + limit
    for request in newest_first:
        if query.matches(request):
            if total >= offset and (end is None or total < end):
                chosen.append(summarize(request))
            total += 1
    return chosen, total


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def totals_of(requests: Iterable[Request]) -> Totals:
    """The totals over `requests` (oldest first), in one lean pass (no request is summarized)."""
    waiting = running_now = completed_count = 0
    by_error: Counter[str] = Counter()
    succeeded: Counter[tuple[Any, ...]] = Counter()  # (endpoint id, *priced input values) -> requests
    unhashable: list[tuple[str, Mapping[str, Any], int]] = []  # priced inputs that are lists or objects
    queued: list[float] = []
    running: list[float] = []
    request = None
    in_queue, in_progress = Status.IN_QUEUE, Status.IN_PROGRESS
    resolution, duration, audio = PRICED_INPUTS
    for request in requests:
        started, completed = request.started_at, request.completed_at
        if started is not None:
            queued.append(started - request.submitted_at)
            if completed is not None:
                running.append(completed - started)
        elif completed is not None:
            queued.append(completed - request.submitted_at)
        status = request.status
        if status is in_queue:
            waiting += 1
            continue
        if status is in_progress:
            running_now += 1
            continue
        completed_count += 1
        outcome = request.outcome
        if outcome.status_code != 200:
            by_error[error_label(outcome.error_type, outcome.status_code)] += 1
            continue
        arguments = request.input
        try:
            key = (request.endpoint_id, arguments.get(resolution, _ABSENT), arguments.get(duration, _ABSENT),
                   arguments.get(audio, _ABSENT))  # fmt: skip
            succeeded[key] += 1
        except (TypeError, AttributeError):  # an input value that is a list or an object
            unhashable.append((request.endpoint_id, summarize(request).priced or {}, 1))
    groups = [
        (endpoint_id, {name: value for name, value in zip(PRICED_INPUTS, values, strict=True) if value is not _ABSENT},
         count)
        for (endpoint_id, *values), count in succeeded.items()
    ]  # fmt: skip
    return Totals(
        by_status={in_queue.value: waiting, in_progress.value: running_now, Status.COMPLETED.value: completed_count},
        by_error_type=ranked(by_error.items()),
        median_seconds={in_queue.value: _median(queued), in_progress.value: _median(running)},
        succeeded=groups + unhashable,
        newest=None if request is None else request.request_id,
    )
