"""The dashboard's read model: requests as rows, one request in full, and totals. No HTTP here.

The control plane answers these as JSON (`GET /_emulator/requests`, `/_emulator/requests/{id}`,
`/_emulator/totals`) and the page (`/_emulator/ui`) renders the same dicts, so the page shows nothing
the JSON lacks. A read first plays out the queue's events due by the clock (`catch_up`); each request a
page shows that is not COMPLETED is then read as a status read would (without counting as a poll).

Lists and totals come from the store's own queries (`Store.summaries`, `Store.totals`; `fal_emulator.summary`),
so a page costs the same with 10 or 10,000 stored requests on every store: only the page's requests are read.

Times are POSIX seconds of the emulator's clock (`*_at`), durations are seconds, prices are USD.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fal_emulator.clock import isoformat
from fal_emulator.errors import RequestNotFound
from fal_emulator.queue import Request, Status
from fal_emulator.service import Emulator
from fal_emulator.summary import FAILED, OK, Summary, SummaryQuery, Totals, summarize
from fal_emulator.ui.prices import Prices

PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 2**31  # past any list


def whole_number(raw: str, most: int) -> int | None:
    """A query parameter's whole number (ASCII digits), at most `most`; None when `raw` is not one. Thousands of
    digits read as `most` (Python's int() refuses 4,300 or more)."""
    if not (raw.isascii() and raw.isdigit()):
        return None
    return min(int(raw), most) if len(raw) <= 18 else most


STATUSES = tuple(status.value for status in Status)
SUCCEEDED = OK  # error_type filters: no error at all (`ok`), any error (`error`, FAILED)
__all__ = ["FAILED", "SUCCEEDED"]


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

    def summary_query(self) -> SummaryQuery:
        """The filters as the store's query."""
        return SummaryQuery(self.endpoint_id, Status(self.status) if self.status else None, self.error_type)

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


def catch_up(emulator: Emulator) -> None:
    """Play out every event due by the emulator's clock (a request becomes ready, starts, finishes, expires)."""
    emulator.queue.wake(emulator.clock.now())


def row(emulator: Emulator, summary: Summary, now: float, prices: Prices, position: int | None) -> dict[str, Any]:
    """One request as a list shows it: ids, status, `queue_position` (`position`, while IN_QUEUE), times (POSIX
    seconds), `age_seconds`, policy, scenario, priority, `error_type` and `status_code` once COMPLETED, and
    `price_usd`: what fal would have charged for its video (None when unpriced)."""
    endpoint = emulator.catalog.get(summary.endpoint_id)
    return {
        "request_id": summary.request_id,
        "endpoint_id": summary.endpoint_id,
        "app_id": summary.app_id,
        "status": summary.status.value,
        "queue_position": position if summary.status is Status.IN_QUEUE else None,
        "submitted_at": summary.submitted_at,
        "started_at": summary.started_at,
        "completed_at": summary.completed_at,
        "age_seconds": round(max(0.0, now - summary.submitted_at), 3),
        "policy": summary.policy,
        "scenario": summary.scenario,
        "priority": summary.priority,
        "error_type": summary.error_type,
        "status_code": summary.status_code,
        # fal's queue takes any JSON body: an input that is not an object names no video (the runner refused it)
        "price_usd": prices.cost(endpoint, summary.priced)
        if endpoint is not None and summary.priced is not None
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
    emulator: Emulator, filters: Filters, prices: Prices, *, offset: int = 0, limit: int | None = PAGE_SIZE
) -> Page:
    """The requests that match `filters`, newest first, from `offset` (all of them when `limit` is None): one
    page of the store's summaries. Each request on it not yet COMPLETED is read as a status read would (its
    queue position; a running one's runner looked at); if that moved one, the page is read again."""
    query = filters.summary_query()
    for _ in range(2):
        summaries, total = emulator.store.summaries(query, offset, limit)
        positions: dict[str, int | None] = {}
        moved = False
        for summary in summaries:
            if summary.status is Status.COMPLETED:
                continue
            try:
                view = emulator.queue.status(summary.request_id, poll=False)
            except RequestNotFound:  # forgotten meanwhile (a reset from another process)
                moved = True
                continue
            positions[summary.request_id] = view.queue_position
            moved = moved or view.status is not summary.status
        if not moved:
            break
    now = emulator.clock.now()
    rows = [row(emulator, summary, now, prices, positions.get(summary.request_id)) for summary in summaries]
    return Page(rows, total, offset, limit if limit is not None else total, filters)


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
    position = None
    if request.status is Status.IN_QUEUE:
        position = emulator.queue.status(request.request_id, poll=False).queue_position
    found = row(emulator, summarize(request), now, prices, position)
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


def totals(emulator: Emulator, prices: Prices, counted: Totals | None = None) -> dict[str, Any]:
    """Counts and spend over every stored request (`counted`: the store's totals, read now when None).

    `{"requests", "by_status": {status: n}, "by_error_type": {error_type: n}, "median_seconds":
    {"IN_QUEUE", "IN_PROGRESS"} (over the requests that left that state), "succeeded",
    "spend_avoided_usd", "unpriced"}`. Spend avoided is what fal would have billed for the videos generated:
    fal bills successful requests (server errors are not billed; fal's FAQ says a 422 may be), so failed
    requests are left out; `unpriced` counts successes with no rate in the price file.
    """
    counted = counted or emulator.store.totals()
    spend, videos, unpriced = 0.0, 0, 0
    for endpoint_id, priced, count in counted.succeeded:
        videos += count
        endpoint = emulator.catalog.get(endpoint_id)
        price = prices.cost(endpoint, priced) if endpoint is not None else None
        if price is None:
            unpriced += count
        else:
            spend += price * count
    medians = {state: None if value is None else round(value, 3) for state, value in counted.median_seconds.items()}
    return {
        "requests": counted.requests,
        "by_status": counted.by_status,
        "by_error_type": counted.by_error_type,
        "median_seconds": medians,
        "succeeded": videos,
        "spend_avoided_usd": round(spend, 2),
        "unpriced": unpriced,
    }


def selected_state(emulator: Emulator, request_id: str | None) -> tuple[str, str, int] | None:
    """The state of the request a page shows in full, brought up to date: (id, status, log lines); None when
    none is shown or it is not stored."""
    if not request_id:
        return None
    try:
        emulator.queue.status(request_id, poll=False)
    except RequestNotFound:
        return None
    found = emulator.store.get(request_id)
    return None if found is None else (found.request_id, found.status.value, len(found.logs))


def version(emulator: Emulator, counted: Totals, deliveries: int, selected: tuple[str, str, int] | None) -> str:
    """A short digest of what the page shows: it changes when a request is added, moves or is forgotten (the
    counts by status and error type, the newest request), when the request shown in full (`selected_state`)
    moves or logs, when the clock is frozen, advanced while frozen or rescaled, when policies or scripted
    outcomes change, and when a webhook attempt is made. (Ages and a running clock alone do not change it.)"""
    clock = emulator.clock
    state = (
        counted.by_status, counted.by_error_type, counted.newest, selected, deliveries, clock.frozen, clock.scale,
        clock.now() if clock.frozen else None, emulator.queue.policy.describe(),
        sorted((k, v.describe()) for k, v in emulator.policies.items()), sorted(emulator.scripted_counts().items()),
    )  # fmt: skip
    return hashlib.sha256(repr(state).encode()).hexdigest()[:16]
