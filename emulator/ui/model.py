"""The dashboard's read model: requests as rows, one request in full, and totals. No HTTP here.

The control plane answers these as JSON (`GET /_emulator/requests`, `/_emulator/requests/{id}`,
`/_emulator/totals`) and the page (`/_emulator/ui`) renders the same dicts, so the page shows nothing
the JSON lacks. Every read first brings the requests up to date by their policy and the clock, as a
status read would (without counting as a poll).

Times are POSIX seconds of the emulator's clock (`*_at`), durations are seconds, prices are USD.
"""

from __future__ import annotations

import base64
import hashlib
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fal_emulator.clock import isoformat
from fal_emulator.errors import RequestNotFound
from fal_emulator.queue import Request, Status
from fal_emulator.service import Emulator
from fal_emulator.ui.prices import PRICE_FIELDS, Prices

PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
STATUSES = tuple(status.value for status in Status)
SUCCEEDED, FAILED = "ok", "error"  # error_type filters: no error at all, any error


@dataclass(frozen=True)
class Filters:
    """Which requests a list shows: by endpoint id, status, and error type (`ok`: none, `error`: any)."""

    endpoint_id: str | None = None
    status: str | None = None
    error_type: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Filters:
        """Filters from query parameters; empty values are no filter. Raises ValueError for an unknown status."""
        status = query.get("status") or None
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        return cls(query.get("endpoint_id") or None, status, query.get("error_type") or None)

    def matches(self, request: Request) -> bool:
        if self.endpoint_id is not None and request.endpoint_id != self.endpoint_id:
            return False
        if self.status is not None and request.status.value != self.status:
            return False
        if self.error_type is None:
            return True
        error_type = error_type_of(request)
        if self.error_type == SUCCEEDED:
            return request.status is Status.COMPLETED and request.outcome.ok
        if self.error_type == FAILED:
            return request.status is Status.COMPLETED and not request.outcome.ok
        return error_type == self.error_type

    def query(self) -> dict[str, str]:
        """The filters as query parameters (only those set)."""
        values = {"endpoint_id": self.endpoint_id, "status": self.status, "error_type": self.error_type}
        return {name: value for name, value in values.items() if value}


def error_type_of(request: Request) -> str | None:
    """The `error_type` a COMPLETED request failed with (None while running, or on success)."""
    return request.outcome.error_type if request.status is Status.COMPLETED else None


def outcome_label(request: Request) -> str:
    """`OK`, or `HTTP <code>` for a failure that names no `error_type` (the runner's validation 422)."""
    return "OK" if request.outcome.ok else f"HTTP {request.outcome.status_code}"


def up_to_date(emulator: Emulator) -> list[Request]:
    """Every stored request, oldest first, each brought up to date by its policy and the clock.

    The store is read once; only the requests not yet COMPLETED are read again after their update.
    """
    requests = emulator.requests()
    for index, request in enumerate(requests):
        if request.status is Status.COMPLETED:
            continue
        try:
            emulator.queue.status(request.request_id, poll=False)
        except RequestNotFound:  # forgotten meanwhile (a reset from another process)
            continue
        fresh = emulator.store.get(request.request_id)
        if fresh is not None:
            requests[index] = fresh
    return requests


def row(emulator: Emulator, request: Request, now: float, prices: Prices) -> dict[str, Any]:
    """One request as a list shows it: ids, status, `queue_position` (while IN_QUEUE), times (POSIX
    seconds), `age_seconds`, policy, scenario, priority, `error_type` and `status_code` once COMPLETED, and
    `price_usd`: what fal would have charged for its video (None when unpriced)."""
    completed = request.status is Status.COMPLETED
    position = None
    if request.status is Status.IN_QUEUE:
        position = emulator.queue.status(request.request_id, poll=False).queue_position
    endpoint = emulator.catalog.get(request.endpoint_id)
    return {
        "request_id": request.request_id,
        "endpoint_id": request.endpoint_id,
        "app_id": request.app_id,
        "status": request.status.value,
        "queue_position": position,
        "submitted_at": request.submitted_at,
        "started_at": request.started_at,
        "completed_at": request.completed_at,
        "age_seconds": round(max(0.0, now - request.submitted_at), 3),
        "policy": request.policy.describe(),
        "scenario": request.scenario,
        "priority": request.priority,
        "error_type": error_type_of(request),
        "status_code": request.outcome.status_code if completed else None,
        # fal's queue takes any JSON body: an input that is not an object names no video (the runner refused it)
        "price_usd": prices.cost(endpoint, request.input)
        if endpoint is not None and isinstance(request.input, Mapping)
        else None,
    }


@dataclass(frozen=True)
class Page:
    """One page of a filtered list, newest first: `rows`, out of `total` matching requests from `offset`."""

    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int
    filters: Filters

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None


def page(
    emulator: Emulator, requests: Sequence[Request], filters: Filters, prices: Prices, *,
    offset: int = 0, limit: int | None = PAGE_SIZE,
) -> Page:  # fmt: skip
    """The requests that match `filters`, newest first, from `offset` (all of them when `limit` is None)."""
    matching = [request for request in reversed(requests) if filters.matches(request)]
    chosen = matching[offset:] if limit is None else matching[offset : offset + limit]
    now = emulator.clock.now()
    rows = [row(emulator, request, now, prices) for request in chosen]
    return Page(rows, len(matching), offset, limit if limit is not None else len(matching), filters)


def timeline(request: Request, now: float) -> list[dict[str, Any]]:
    """The states the request went through on the emulator's clock.

    Each step is `{"status", "at" (POSIX seconds), "time" (ISO-8601), "offset_seconds" (since submit),
    "seconds" (time spent in it; so far for the current state), "current"}`; the COMPLETED step also has
    `outcome`: `OK` or the error type.
    """
    steps: list[tuple[Status, float]] = [(Status.IN_QUEUE, request.submitted_at)]
    if request.started_at is not None:
        steps.append((Status.IN_PROGRESS, request.started_at))
    if request.completed_at is not None:
        steps.append((Status.COMPLETED, request.completed_at))
    entries = []
    for index, (status, at) in enumerate(steps):
        last = index == len(steps) - 1
        until = now if last else steps[index + 1][1]
        entry: dict[str, Any] = {
            "status": status.value,
            "at": at,
            "time": isoformat(at),
            "offset_seconds": round(at - request.submitted_at, 3),
            "seconds": None if status is Status.COMPLETED else round(max(0.0, until - at), 3),
            "current": last,
        }
        if status is Status.COMPLETED:
            entry["outcome"] = error_type_of(request) or outcome_label(request)
        entries.append(entry)
    return entries


def signature_valid(delivery: Mapping[str, Any], jwks: Mapping[str, Any]) -> bool | None:
    """Does a webhook attempt's `X-Fal-Webhook-Signature` verify with a key of `jwks`?

    The check a receiver makes (https://fal.ai/docs/documentation/model-apis/inference/webhooks.md):
    Ed25519 over `request_id \\n user_id \\n timestamp \\n sha256_hex(body)`. None when nothing was signed
    (the target was refused before sending).
    """
    headers, digest = delivery.get("headers"), delivery.get("body_sha256")
    if not isinstance(headers, Mapping) or not isinstance(digest, str):
        return None
    names = ("X-Fal-Webhook-Request-Id", "X-Fal-Webhook-User-Id", "X-Fal-Webhook-Timestamp")
    try:
        message = "\n".join([*(str(headers[name]) for name in names), digest]).encode()
        signature = bytes.fromhex(str(headers["X-Fal-Webhook-Signature"]))
    except (KeyError, ValueError):
        return False
    for key in jwks.get("keys", []):
        try:
            x = str(key["x"])
            Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))).verify(
                signature, message
            )
        except (InvalidSignature, KeyError, ValueError):
            continue
        return True
    return False


def detail(
    emulator: Emulator, request: Request, prices: Prices, *,
    deliveries: Iterable[Mapping[str, Any]] = (), jwks: Mapping[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One request in full: its row, plus `input` (as submitted), `logs`, `webhook_url`, `outcome`
    (`{status_code, body}`, the planned one until COMPLETED), `timeline`, and `webhooks`: its delivery
    attempts, each with `signature_valid` (checked with `jwks`)."""
    now = emulator.clock.now()
    found = row(emulator, request, now, prices)
    attempts = [dict(attempt) for attempt in deliveries if attempt.get("request_id") == request.request_id]
    for attempt in attempts:
        attempt["signature_valid"] = signature_valid(attempt, jwks or {})
    found.update(
        input=request.input,
        logs=request.logs,
        webhook_url=request.webhook_url,
        outcome={"status_code": request.outcome.status_code, "body": request.outcome.body},
        timeline=timeline(request, now),
        webhooks=attempts,
    )
    return found


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def totals(emulator: Emulator, requests: Sequence[Request], prices: Prices) -> dict[str, Any]:
    """Counts and spend over `requests`.

    `{"requests", "by_status": {status: n}, "by_error_type": {error_type: n}, "median_seconds":
    {"IN_QUEUE", "IN_PROGRESS"} (over the requests that left that state), "succeeded",
    "spend_avoided_usd"}`. Spend avoided is what fal would have billed for the videos generated: fal bills
    successful requests (server errors are not billed; fal's FAQ says a 422 may be), so failed requests are
    left out; `unpriced` counts successes with no rate in the price file.
    """
    waiting = running_now = videos = unpriced = 0
    by_error: Counter[str] = Counter()
    succeeded: Counter[tuple[Any, ...]] = Counter()  # (endpoint id, *PRICE_FIELDS values) -> videos
    queued: list[float] = []
    running: list[float] = []
    in_queue, completed_status = Status.IN_QUEUE, Status.COMPLETED
    resolution, duration, audio = PRICE_FIELDS
    for request in requests:  # one lean pass: the page reads totals over every stored request
        status, started, completed = request.status, request.started_at, request.completed_at
        left_queue = started if started is not None else completed
        if left_queue is not None:
            queued.append(left_queue - request.submitted_at)
            if started is not None and completed is not None:
                running.append(completed - started)
        if status is not completed_status:
            if status is in_queue:
                waiting += 1
            else:
                running_now += 1
            continue
        if request.outcome.status_code != 200:
            by_error[request.outcome.error_type or outcome_label(request)] += 1
            continue
        videos += 1
        arguments = request.input
        key = (request.endpoint_id, arguments.get(resolution), arguments.get(duration), arguments.get(audio))
        try:
            succeeded[key] += 1
        except TypeError:  # an unhashable input value names no clip: no price
            unpriced += 1
    spend = 0.0
    for (endpoint_id, *values), count in succeeded.items():
        endpoint = emulator.catalog.get(endpoint_id)
        arguments = {name: value for name, value in zip(PRICE_FIELDS, values, strict=True) if value is not None}
        price = prices.cost(endpoint, arguments) if endpoint is not None else None
        if price is None:
            unpriced += count
        else:
            spend += price * count
    return {
        "requests": len(requests),
        "by_status": {
            Status.IN_QUEUE.value: waiting,
            Status.IN_PROGRESS.value: running_now,
            Status.COMPLETED.value: len(requests) - waiting - running_now,
        },
        "by_error_type": dict(by_error.most_common()),
        "median_seconds": {Status.IN_QUEUE.value: _median(queued), Status.IN_PROGRESS.value: _median(running)},
        "succeeded": videos,
        "spend_avoided_usd": round(spend, 2),
        "unpriced": unpriced,
    }


def version(emulator: Emulator, requests: Sequence[Request], deliveries: int) -> str:
    """A short digest of what the page shows: it changes when a request is added, moves or logs, when the
    clock is frozen, advanced while frozen or rescaled, when policies or scripted outcomes change, and when
    a webhook attempt is made. (Ages and a running clock alone do not change it.)"""
    clock = emulator.clock
    live = [(r.request_id, r.status.value, len(r.logs)) for r in requests if r.status is not Status.COMPLETED]
    last = requests[-1].request_id if requests else None
    state = (
        len(requests), last, live, deliveries, clock.frozen, clock.scale, clock.now() if clock.frozen else None,
        emulator.queue.policy.describe(), sorted((k, v.describe()) for k, v in emulator.policies.items()),
        sorted(emulator.scripted_counts().items()),
    )  # fmt: skip
    return hashlib.sha256(repr(state).encode()).hexdigest()[:16]
