"""The queue API (`queue.fal.run`) and the synchronous run API (`fal.run`, served under `/run/`).

    POST /{endpoint id}                                 submit            200 QueueStatus
    GET  /{app id}/requests/{request_id}/status         status            202 queued/running, 200 completed
    GET  /{app id}/requests/{request_id}/status/stream  status as SSE     text/event-stream, ends after COMPLETED
    GET  /{app id}/requests/{request_id}                result            200 output, 400 not ready, stored error
    PUT  /{app id}/requests/{request_id}/cancel         cancel            202 / 400 / 404
    POST /run/{endpoint id}                             run synchronously 200 output
    POST /run/{endpoint id}/stream                      run, streamed     text/event-stream, the output as its event

`{app id}` may also be the full endpoint id (the per-endpoint OpenAPI documents use that form).
Source: https://fal.ai/docs/documentation/model-apis/inference/queue.md and
https://fal.ai/docs/documentation/model-apis/inference/synchronous.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Match, Route
from starlette.types import Scope, Send

from fal_emulator.errors import ConnectionDrop, FalError, ModelError, RequestError, error_item
from fal_emulator.http.auth import authenticate, check_authorization
from fal_emulator.http.host_routing import media_base_url
from fal_emulator.http.rendering import (
    CONTROL_PREFIX,
    REQUEST_ID_HEADER,
    base_url,
    dumps,
    emulator_of,
    fal_json,
    plain_base_url,
    status_body,
)
from fal_emulator.limits import url_problem
from fal_emulator.queue import PRIORITY_RANK, Outcome, Priority, Status, StatusView
from fal_emulator.scenarios import HEADER as SCENARIO_HEADER, call_error, rejection_error
from fal_emulator.service import Emulator
from fal_emulator.submission import Submission, SubmitOptions

SCENARIO = SCENARIO_HEADER.lower().encode()
STREAM_TICK = 0.05  # seconds between two looks at a streamed request
RUN_TICK = 0.02  # seconds between two looks at a synchronous request

QUEUE_LENGTH = re.compile(r"[0-9]{1,18}")
TRUE_VALUES = {"1", "true"}
NO_RETRY_VALUES = {"1", "true", "yes"}  # X-Fal-No-Retry (common-parameters.md); other values leave retries on
FALSE_VALUES = {"0", "false", ""}


KEEPALIVE = ": keepalive\n\n"  # an SSE comment: both clients' parsers skip it


async def watch(read: Callable[[], StatusView], tick: float) -> AsyncIterator[StatusView]:
    """`read()` now, then every `tick` seconds, until it reads COMPLETED: that view is the last one yielded.
    What every wait for a request does (a status stream, `fal.run`, `/stream`)."""
    while True:
        view = read()
        yield view
        if view.status is Status.COMPLETED:
            return
        await asyncio.sleep(tick)


class Keepalive:
    """When an open stream owes its client a `: keepalive` comment: `every` seconds after it last sent something
    (fal sends one every 15 s; `stream_keepalive`)."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.last = time.monotonic()

    def sent(self) -> None:
        self.last = time.monotonic()

    def due(self) -> bool:
        """True (and counted as sent) when a comment is owed now."""
        if time.monotonic() - self.last < self.every:
            return False
        self.sent()
        return True


class StreamCut(Exception):
    """Raised by an `EventStream`'s events: end the answer here, without its final chunk."""


class EventStream(StreamingResponse):
    """`200 text/event-stream` from an async iterator of SSE text. When the iterator raises `StreamCut` the answer
    ends without its final (zero-length) chunk and the server closes the connection: an HTTP client sees a body
    cut short, a transport error (httpx `RemoteProtocolError`, fetch's `TypeError: terminated`), never a complete
    stream. It is how a failure that comes after the `200` reaches client code as a failure."""

    def __init__(self, events: AsyncIterator[str], headers: dict[str, str]) -> None:
        super().__init__(events, media_type="text/event-stream", headers=headers)

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                data = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode(self.charset)
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except StreamCut:
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def wants_logs(request: Request) -> bool:
    """The `logs` query flag: fal_client sends true/false, @fal-ai/client 1/0. Raises ModelError otherwise."""
    if not request.scope.get("query_string"):
        return False
    raw = request.query_params.get("logs", "").lower()
    if raw in TRUE_VALUES | FALSE_VALUES:
        return raw in TRUE_VALUES
    raise ModelError([error_item(["query", "logs"], "Input should be a valid boolean", "bool_parsing", input_=raw)])


def _not_a_queue_path(request: Request) -> None:
    """A POST to a path another route serves (`…/requests/{id}[/…]`, `/_emulator/health`) is a wrong method
    there (405 with that route's methods), not an unknown endpoint."""
    if emulator_of(request).catalog.get(request.path_params["endpoint_id"]) is not None:
        return
    methods: set[str] = set()
    for route in request.app.router.routes[:-1]:  # every route but this catch-all submit
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is Match.PARTIAL:
            methods |= route.methods
    if methods:
        raise HTTPException(405, headers={"Allow": ", ".join(sorted(methods))})
    if request.url.path.startswith(CONTROL_PREFIX + "/"):  # no endpoint id starts with `_emulator`
        raise HTTPException(404)


def submit_options(request: Request) -> SubmitOptions:
    """Platform headers and query parameters of a submit. Raises FalError 400 `bad_request` for bad values.

    Sources: https://fal.ai/docs/documentation/model-apis/common-parameters.md (`X-Fal-Request-Timeout`,
    `X-Fal-Queue-Priority`: `normal` or `low`, `fal_max_queue_length`, `X-Fal-No-Retry`), .../inference/webhooks.md
    (`fal_webhook`).
    """

    def bad(detail: str) -> FalError:
        return RequestError("bad_request", detail, 400)

    timeout = request.headers.get("x-fal-request-timeout")
    start_timeout = None
    if timeout is not None:
        try:
            start_timeout = float(timeout)
        except ValueError:
            raise bad(f"Invalid X-Fal-Request-Timeout header: {timeout!r} is not a number of seconds") from None
        if not start_timeout > 0.1 or start_timeout != start_timeout or start_timeout == float("inf"):
            raise bad(f"Invalid X-Fal-Request-Timeout header: {timeout!r} must be more than 0.1 seconds")
    limit = request.query_params.get("fal_max_queue_length")
    if limit is not None and not QUEUE_LENGTH.fullmatch(limit):
        raise bad(f"Invalid fal_max_queue_length: {limit[:40]!r} is not a whole number below 10**18")
    priority = request.headers.get("x-fal-queue-priority", "normal")
    if priority not in PRIORITY_RANK:
        raise bad(f"Invalid X-Fal-Queue-Priority header: {priority[:40]!r} must be 'normal' or 'low'")
    return SubmitOptions(
        scenario=request.headers.get(SCENARIO_HEADER),
        start_timeout=start_timeout,
        max_queue_length=None if limit is None else int(limit),
        webhook_url=webhook_url(request),
        no_retry=request.headers.get("x-fal-no-retry", "").strip().lower() in NO_RETRY_VALUES,
        priority=cast(Priority, priority),
    )


def webhook_url(request: Request) -> str | None:
    """The `fal_webhook` query parameter (None when absent or empty). Raises ModelError 422 (pydantic's
    `url_parsing` / `url_scheme`, `loc: ["query", "fal_webhook"]`) when it is not an http(s) URL."""
    url = request.query_params.get("fal_webhook") or None
    problem = None if url is None else url_problem(url)
    if problem is None:
        return url
    if problem.startswith("its scheme"):
        item = error_item(["query", "fal_webhook"], "URL scheme should be 'http' or 'https'", "url_scheme", input_=url)
    else:
        item = error_item(["query", "fal_webhook"], f"Input should be a valid URL, {problem}", "url_parsing",
                          input_=url, ctx={"error": problem})  # fmt: skip
    raise ModelError([item])


async def meet_faults(request: Request, route: str) -> None:
    """What this call meets before its normal answer (see `Emulator.call_scenario`): a scripted delay, a dropped
    connection, a gateway error or a fal error. Faults act before authentication, as fal's gateway's do.

    Raises ConnectionDrop, GatewayError, FalError, or ScenarioError for a bad scenario header.
    """
    emulator = emulator_of(request)
    header = request.headers.get(SCENARIO_HEADER)
    if not header and not emulator.route_outcomes:
        return  # nothing scripted and no header: the call meets nothing
    scenario = emulator.call_scenario(route, request.path_params["request_id"], header)
    if scenario.latency is not None:
        await asyncio.sleep(scenario.latency.sample(emulator.random))
    if "drop" in scenario.faults:
        raise ConnectionDrop()
    error = call_error(scenario)
    if error is not None:
        raise error


async def _enqueue(request: Request) -> tuple[Submission, SubmitOptions]:
    """Authenticate, validate and enqueue the request's body; waits out a scripted latency."""
    authenticate(request)
    options = submit_options(request)
    body = await request.body()
    endpoint_id, media_base = request.path_params["endpoint_id"], media_base_url(request)
    submission = emulator_of(request).submit(endpoint_id, body, media_base, options)
    if submission.delay:  # a scripted latency; none: answer without another turn of the event loop
        await asyncio.sleep(submission.delay)
    return submission, options


async def submit(request: Request) -> Response:
    """Submit. With `fal_webhook` the answer also carries `gateway_request_id`, equal to `request_id` (it
    names the last attempt, and there has been one; https://fal.ai/docs/model-endpoints/webhooks)."""
    _not_a_queue_path(request)
    submission, options = await _enqueue(request)
    view = submission.view
    body = status_body(view, base_url(request), with_logs=False, submitted=True)
    if options.webhook_url:
        request.app.state.webhooks.watch(
            view.request_id,
            options.webhook_url,
            payload_error="payload_error" in submission.scenario.faults,
            gateway_request_id=submission.gateway_request_id,
        )
        body["gateway_request_id"] = view.request_id
    return fal_json(body, 200, view.request_id)


async def status(request: Request) -> Response:
    await meet_faults(request, "status")
    authenticate(request)
    request_id = request.path_params["request_id"]
    with_logs = wants_logs(request)
    view = emulator_of(request).status(request.path_params["app_path"], request_id)
    return fal_json(status_body(view, base_url(request), with_logs=with_logs), status_code(view), request_id)


def status_code(view: StatusView) -> int:
    """A status poll answers 200 once COMPLETED, 202 before."""
    return 200 if view.status is Status.COMPLETED else 202


def plain_status(emulator: Emulator, scope: Scope, path_params: Mapping[str, str]) -> tuple[int, bytes] | None:
    """The status route's answer (status code, JSON body) to a plain poll, made from the ASGI scope without
    building a Starlette request and response: a GET with no query string, no `X-Fal-Emulator-Scenario`
    header, nothing scripted for any route, an accepted `Authorization` header, a known request and a plain
    `Host` header. None for every other call, which the route then answers (nothing has changed yet: the
    checks come before the poll). The answer is the route's own: `status` above makes it the same way.
    """
    if scope["method"] != "GET" or scope.get("query_string") or emulator.route_outcomes:
        return None
    authorization = ""
    for name, value in scope["headers"]:
        if name == SCENARIO:
            return None
        if name == b"authorization" and not authorization:
            authorization = value.decode("latin-1")
    base = plain_base_url(scope)
    if base is None:
        return None
    try:
        check_authorization(authorization, emulator.settings.keys)
        view = emulator.status(path_params["app_path"], path_params["request_id"])
    except FalError:  # a 401, or a 404 raised before the request was read
        return None
    return status_code(view), dumps(status_body(view, base, with_logs=False))


async def stream_status(request: Request) -> Response:
    """SSE: a `data:` event per change, a `: keepalive` comment every `stream_keepalive` seconds.

    A change is a new status, a new `queue_position` or new log lines. With `logs=1` each event's `logs`
    holds only the lines that are new since the previous event: @fal-ai/client 1.10.1 appends every
    event's `logs` to those it already holds (`queue.js` `subscribeToStatus`, "accumulate logs to match
    previous polling behavior"), so the lines it ends with are the list a poll shows.
    Source: https://fal.ai/docs/inference-api/queue/status-stream.
    """
    await meet_faults(request, "stream")
    authenticate(request)
    emulator = emulator_of(request)
    app_path, request_id = request.path_params["app_path"], request.path_params["request_id"]
    with_logs = wants_logs(request)
    emulator.status(app_path, request_id, poll=False)  # raises RequestNotFound before the stream starts
    base = base_url(request)
    keepalive = Keepalive(emulator.settings.stream_keepalive)

    async def events() -> AsyncIterator[str]:
        last_body, sent_lines = None, 0
        async for view in watch(lambda: emulator.status(app_path, request_id), STREAM_TICK):
            body = status_body(view, base, with_logs=with_logs)
            new_lines = view.logs[sent_lines:] if isinstance(body.get("logs"), list) else []
            if body.get("logs") is not None:
                body["logs"] = None  # compared without its lines: new lines are a change of their own
            if body != last_body or new_lines:
                last_body = dict(body)
                if "logs" in body and with_logs:
                    body["logs"] = new_lines
                    sent_lines = len(view.logs)
                yield f"data: {json.dumps(body)}\n\n"
                keepalive.sent()
            elif view.status is not Status.COMPLETED and keepalive.due():
                yield KEEPALIVE

    headers = {REQUEST_ID_HEADER: request_id, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def result(request: Request) -> Response:
    await meet_faults(request, "result")
    authenticate(request)
    request_id = request.path_params["request_id"]
    outcome = emulator_of(request).result(request.path_params["app_path"], request_id)
    return fal_json(outcome.body, outcome.status_code, request_id, outcome.headers)


async def cancel(request: Request) -> Response:
    await meet_faults(request, "cancel")
    authenticate(request)
    request_id = request.path_params["request_id"]
    answer = emulator_of(request).cancel(request.path_params["app_path"], request_id)
    return fal_json({"status": answer}, 202 if answer == "CANCELLATION_REQUESTED" else 400, request_id)


async def _until_completed(request: Request, request_id: str) -> Outcome:
    """Wait for a synchronous request's outcome; a caller that goes away cancels it (fal.run's request ends
    with its connection)."""
    emulator = emulator_of(request)
    async for view in watch(lambda: emulator.queue.status(request_id), RUN_TICK):
        if view.status is not Status.COMPLETED and await request.is_disconnected():
            emulator.queue.cancel(request_id)
            break
    return emulator.queue.result(request_id)


def _runner_for_direct_call(request: Request) -> None:
    """A direct call (`fal.run`) made while every runner is busy is answered at once 429
    `concurrent_requests_limit`: fal's gateway checks its concurrency at request time
    (https://fal.ai/docs/documentation/model-apis/concurrency-limits.md). Raises that FalError."""
    authenticate(request)
    if emulator_of(request).queue.at_capacity():
        raise rejection_error("rate_limited")


async def run(request: Request) -> JSONResponse:
    """Synchronous inference: the request goes through the queue, the answer waits for COMPLETED."""
    _runner_for_direct_call(request)
    view = (await _enqueue(request))[0].view
    outcome = await _until_completed(request, view.request_id)
    return fal_json(outcome.body, outcome.status_code, view.request_id, outcome.headers)


async def stream_run(request: Request) -> Response:
    """`POST /run/{endpoint id}/stream`: what `fal_client.stream()` and `@fal-ai/client`'s `fal.stream()` call.

    fal documents `/stream` only for apps that stream partial outputs; Veo's behaviour there is unknown, so
    the emulator chooses (DIVERGENCES.md #18a): the request runs as `fal.run` runs it, and the answer is
    `200 text/event-stream` at once, `: keepalive` comments while it runs, then one `data:` event holding the
    output (what `fal.run` answers) and the end of the stream, so the clients' last event (JS `done()`) is
    the output. Both clients parse each event's data as JSON and ignore the event's name (fal_client
    `iter_sse` + `event.json()`, @fal-ai/client `streaming.js`), so an error can never be an event:
    - a request whose planned outcome is an error (a bad input, a scenario's error) answers as `fal.run` does,
      when it completes: fal's JSON error with its status (both clients raise it);
    - one that fails after the `200` left (cancelled, its start deadline passed) gets a `: error STATUS BODY`
      comment (for a human reading the stream) and the answer is cut without its final chunk (`EventStream`):
      fal_client raises httpx's `RemoteProtocolError`, `done()` rejects with an `ApiError`.
    `x-fal-billable-units` is sent only when the request had already completed with its output before the
    answer began: fal bills no server error (its FAQ), and headers cannot be taken back.
    """
    _runner_for_direct_call(request)
    submission = (await _enqueue(request))[0]
    request_id = submission.view.request_id
    emulator = emulator_of(request)
    planned = emulator.planned_outcome(request_id)
    if not planned.ok:
        outcome = await _until_completed(request, request_id)
        return fal_json(outcome.body, outcome.status_code, request_id, outcome.headers)
    done = emulator.queue.status(request_id, poll=False).status is Status.COMPLETED
    billing = planned.headers if done and emulator.queue.result(request_id).ok else {}
    keepalive = Keepalive(emulator.settings.stream_keepalive)

    async def events() -> AsyncIterator[str]:
        completed = False
        try:
            async for view in watch(lambda: emulator.queue.status(request_id), RUN_TICK):
                if view.status is not Status.COMPLETED and keepalive.due():
                    yield KEEPALIVE
            completed = True
            outcome = emulator.queue.result(request_id)
            if outcome.ok:
                yield f"data: {json.dumps(outcome.body)}\n\n"
            else:
                yield f": error {outcome.status_code} {json.dumps(outcome.body)}\n\n"
                raise StreamCut()
        finally:
            if not completed:  # the caller went away: the request ends with its connection, as fal.run's
                emulator.queue.cancel(request_id)

    headers = {**billing, REQUEST_ID_HEADER: request_id, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return EventStream(events(), headers)
