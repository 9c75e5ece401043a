"""Reading a status stream (SSE) the way fal documents it, with the clock moved on while it is silent.

The stream is read by a thread that hands each event to the caller through a queue, so the caller can wait
with a deadline (no sleeps): when the stream is silent for `IDLE_STEP` seconds and the kit controls the
target's clock, it advances that clock by `CLOCK_STEP` virtual seconds. A stream must send COMPLETED and then
close within `CLOSE_GRACE` seconds (`sse_ends_at_completed`); its events must be status objects whose
statuses never go back.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from fal_emulator.contracts import rules
from fal_emulator.contracts.model import Broken, MachineContext, Tracked, answer_of, show
from fal_emulator.contracts.sse import iter_events

CLOSE_GRACE = 2.0  # seconds a stream may stay open after its COMPLETED event
IDLE_STEP = 0.15  # seconds of a silent stream before the kit moves a controllable clock on
CLOCK_STEP = 1.0  # virtual seconds the clock moves when a stream is silent
STREAM_READ_TIMEOUT = 30.0  # seconds between two lines of a stream (fal and the emulator send a comment every 15 s)

# Checks one event (a status object): (event, request line, response) -> None, or raises Broken.
EventCheck = Callable[[dict[str, Any], str, httpx.Response], None]
# Polls the request's status once: -> (response, parsed body, request line).
Poll = Callable[[], tuple[httpx.Response, Any, str]]


def read_status_stream(
    ctx: MachineContext, tracked: Tracked, logs: bool, check: EventCheck, poll: Poll
) -> tuple[list[dict[str, Any]], list[int], str, httpx.Response]:
    """Read the status stream until it closes, with the clock moved on while it is silent (when the kit
    can move it). Returns its events and the clock epoch each arrived in; raises Broken when the stream does
    not end at COMPLETED or does not close."""
    client = ctx.client
    request = client.build_request(
        "GET",
        ctx.url(f"{tracked.app_path}/status/stream"),
        params={"logs": int(logs)},
        timeout=httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT),
    )
    response = client.send(request, stream=True)
    ctx.requests_made += 1
    line = f"GET {request.url}"
    try:
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
            _, body = answer_of(response)
            raise Broken(
                "sse_ends_at_completed",
                "the status stream of a known request must answer 200 "
                f"text/event-stream, got {response.headers.get('content-type')}",
                line,
                show(response, body),
            )
        missing = rules.request_id_header(response.headers)
        if missing:
            raise Broken("x_fal_request_id", missing, line, f"HTTP {response.status_code} (a status stream)")
        events, epochs = _collect_events(ctx, tracked, response, line, check, poll)
    finally:
        response.close()
    return events, epochs, line, response


def _collect_events(
    ctx: MachineContext, tracked: Tracked, response: httpx.Response, line: str, check: EventCheck, poll: Poll
) -> tuple[list[dict[str, Any]], list[int]]:
    lines: queue.Queue[tuple[str, Any]] = queue.Queue()

    def read() -> None:
        try:
            for data in iter_events(response.iter_lines()):
                lines.put(("event", data))
            lines.put(("closed", None))
        except Exception as exc:  # the main thread closed the stream, or the network failed
            lines.put(("error", exc))

    threading.Thread(target=read, daemon=True, name="sse-reader").start()
    clock = ctx.target.clock
    deadline = time.monotonic() + ctx.stream_deadline()
    events: list[dict[str, Any]] = []
    epochs: list[int] = []
    completed_at: float | None = None
    while True:
        now = time.monotonic()
        limit = completed_at + CLOSE_GRACE if completed_at is not None else deadline
        wait = min(limit - now, IDLE_STEP) if clock is not None and completed_at is None else limit - now
        if wait <= 0:
            break
        try:
            kind, value = lines.get(timeout=wait)
        except queue.Empty:
            if clock is not None and completed_at is None:
                clock.advance(CLOCK_STEP)
                ctx.epoch += 1
            continue
        if kind == "closed":
            if not events or events[-1].get("status") != "COMPLETED":
                shown = [event.get("status") for event in events]
                raise Broken("sse_ends_at_completed", f"the stream closed without a COMPLETED event: {shown}", line)
            return events, epochs
        if kind == "error":
            raise Broken("sse_ends_at_completed", f"the stream broke off: {value!r}", line)
        try:
            event = json.loads(value)
        except ValueError:
            raise Broken("sse_matches_polling", f"an event's data is not JSON: {value[:200]!r}", line) from None
        if not isinstance(event, dict) or event.get("status") not in rules.RANK:
            raise Broken("sse_matches_polling", f"an event is not a status object: {value[:200]!r}", line)
        check(event, line, response)
        if events and rules.RANK[event["status"]] < rules.RANK[events[-1]["status"]]:
            raise Broken(
                "status_never_backwards",
                f"the stream went back from {events[-1]['status']} to {event['status']}",
                line,
                json.dumps(event)[:400],
            )
        events.append(event)
        epochs.append(ctx.epoch)
        if event["status"] == "COMPLETED" and completed_at is None:
            completed_at = time.monotonic()
    if completed_at is not None:
        raise Broken(
            "sse_ends_at_completed",
            f"the stream stayed open {CLOSE_GRACE} s after its COMPLETED event",
            line,
            json.dumps(events[-1])[:400],
        )
    polled, body, _ = poll()
    if isinstance(body, dict) and body.get("status") == "COMPLETED":
        raise Broken(
            "sse_ends_at_completed",
            f"the request is COMPLETED but its stream sent no COMPLETED event in {ctx.stream_deadline()} s",
            line,
            show(polled, body),
        )
    ctx.notes.append(
        f"a stream of {tracked.request_id} did not finish in {ctx.stream_deadline()} s "
        "(the request did not complete either): inconclusive"
    )
    return events, epochs
