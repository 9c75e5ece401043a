"""The control plane, under `/_emulator/`: everything a test needs to steer the emulator.

    GET    /_emulator/health                       {"status": "ok", "endpoints": 18, "store": "memory", "pid": 123}
    POST   /_emulator/reset        {"seed"?: int}  forget requests, scripts, policies, journal, webhooks;
                                                   the default policy and the clock's scale come back, unfrozen
    POST   /_emulator/seed         {"seed": int}   reseed request ids and fault draws
    GET    /_emulator/clock                        {"now": s, "frozen": bool, "scale": x}
    POST   /_emulator/clock        {"advance"?: s, "freeze"?: bool, "scale"?: x}
    GET    /_emulator/policy                       {"default": "...", "endpoints": {id: "..."}}
    PUT    /_emulator/policy       {"policy": "polls:2", "endpoint_id"?: id}
    GET    /_emulator/concurrency                  {"concurrency": N | null, "running": n}
    PUT    /_emulator/concurrency  {"concurrency": N | null}  runners of the account (null: no limit)
    GET    /_emulator/outcomes                     {endpoint id or "*": n, "route:selector": n} scripted, waiting
    POST   /_emulator/outcomes     {"endpoint_id"?: id|"*", "route"?: "submit"|"status"|"stream"|"result"|"cancel",
                                    "request_id"?: id, "outcomes": ["content_policy_violation", "ok", ...]}
    DELETE /_emulator/outcomes
    GET    /_emulator/journal?kind=&method=&path=&status=&request_id=
    DELETE /_emulator/journal
    GET    /_emulator/requests?endpoint_id=&status=&error_type=&offset=&limit=
                                                   [{request_id, endpoint_id, status, queue_position, policy,
                                                   scenario, error_type, price_usd, ...}]: all, oldest first;
                                                   newest first when paged (offset, limit); X-Total-Count
    GET    /_emulator/requests/{id}                one request: its row, input, logs, outcome, timeline, webhooks
    PUT    /_emulator/requests/{id}/policy     {"policy": ...}
    POST   /_emulator/requests/{id}/step           move one state on now
    POST   /_emulator/requests/{id}/complete       complete now with its planned outcome
    POST   /_emulator/requests/{id}/fail  {"error_type": "content_policy_violation"}
    POST   /_emulator/requests/{id}/cancel         cancel now, as the client's cancel does (409 once COMPLETED)
    GET    /_emulator/totals                       by status, by error type, median seconds per state, spend avoided
    GET    /_emulator/webhooks                     the webhook deliveries (every attempt)

Bodies are JSON objects (the edge's limits apply: `fal_emulator.limits`); a bad value is 400 `bad_request`.
Who may call: `fal_emulator.http.access` (a token, or loopback clients only).
"""

from __future__ import annotations

import math
import os
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fal_emulator import jsontext
from fal_emulator.errors import FalError, RequestError, RequestNotFound
from fal_emulator.failures import FAILURES
from fal_emulator.http.access import control_access_error
from fal_emulator.http.rendering import CONTROL_PREFIX, emulator_of
from fal_emulator.limits import JsonLimitError, load_json
from fal_emulator.memory import release_memory
from fal_emulator.queue import Policy, Status
from fal_emulator.ui import model
from fal_emulator.ui.prices import load_prices


def bad_request(detail: str) -> FalError:
    return RequestError("bad_request", detail, 400)


def authorize(request: Request) -> None:
    """Raises FalError 401/403 when the caller may not use the control plane (`fal_emulator.http.access`)."""
    error = control_access_error(request.scope, emulator_of(request).settings)
    if error is not None:
        raise error


async def body(request: Request) -> dict[str, Any]:
    """The JSON object the request carries ({} for an empty body). Raises FalError 400 otherwise."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = load_json(raw)
    except ValueError as exc:  # also UnicodeError and the edge's JsonLimitError
        detail = str(exc) if isinstance(exc, JsonLimitError) else "not valid JSON"
        raise bad_request(f"The body must be a JSON object: {detail}") from None
    if not isinstance(value, dict):
        raise bad_request("The body must be a JSON object")
    return value


def whole_number(value: Any, name: str) -> int:
    """`value` as an int >= 0 (`947.0` included, as JSON Schema's `integer` reads it). Raises FalError 400."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_request(f"'{name}' must be a whole number >= 0")
    return value


def text(payload: dict[str, Any], name: str) -> str | None:
    """The string field `name` (None when absent or null). Raises FalError 400 for another type."""
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string")
    return value


def number(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad_request(f"'{name}' must be a finite number")
    return float(value)


def flag(payload: dict[str, Any], name: str) -> bool | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"'{name}' must be true or false")
    return value


def policy_of(payload: dict[str, Any]) -> Policy:
    try:
        return Policy.parse(text(payload, "policy") or "")
    except ValueError as exc:
        raise bad_request(str(exc)) from None


def request_summary(request: Any) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "endpoint_id": request.endpoint_id,
        "status": request.status.value,
        "submitted_at": request.submitted_at,
        "started_at": request.started_at,
        "completed_at": request.completed_at,
    }


async def health(request: Request) -> Response:
    emulator = emulator_of(request)
    return JSONResponse(
        {"status": "ok", "endpoints": len(emulator.catalog), "store": emulator.settings.store, "pid": os.getpid()}
    )


async def reset(request: Request) -> Response:
    authorize(request)
    seed = (await body(request)).get("seed")
    emulator_of(request).reset(None if seed is None else whole_number(seed, "seed"))
    request.app.state.webhooks.reset()
    release_memory()  # so a long-running emulator's size returns near its start (benchmarks/soak.py)
    return JSONResponse({"status": "reset"})


async def seed(request: Request) -> Response:
    authorize(request)
    value = whole_number((await body(request)).get("seed"), "seed")
    emulator_of(request).reseed(value)
    return JSONResponse({"seed": value})


async def clock(request: Request) -> Response:
    authorize(request)
    clock = emulator_of(request).clock
    if request.method == "POST":
        payload = await body(request)
        try:
            if (scale := number(payload, "scale")) is not None:
                clock.set_scale(scale)
            freeze = flag(payload, "freeze")
            if freeze is True:
                clock.freeze()
            elif freeze is False:
                clock.unfreeze()
            if (seconds := number(payload, "advance")) is not None:
                clock.advance(seconds)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
    return JSONResponse({"now": clock.now(), "frozen": clock.frozen, "scale": clock.scale})


async def policy(request: Request) -> Response:
    authorize(request)
    emulator = emulator_of(request)
    if request.method == "PUT":
        payload = await body(request)
        chosen = policy_of(payload)
        endpoint_id = text(payload, "endpoint_id")
        if endpoint_id:
            emulator.policies[emulator.endpoint(endpoint_id).endpoint_id] = chosen
        else:
            emulator.queue.policy = chosen
    return JSONResponse(
        {
            "default": emulator.queue.policy.describe(),
            "endpoints": {k: v.describe() for k, v in emulator.policies.items()},
        }
    )


async def concurrency(request: Request) -> Response:
    """The account's runners: how many requests may be IN_PROGRESS at once (fal gives new accounts 2)."""
    authorize(request)
    queue = emulator_of(request).queue
    if request.method == "PUT":
        payload = await body(request)
        limit = payload.get("concurrency", False)
        if isinstance(limit, float) and limit.is_integer():  # JSON Schema's integer: 2.0 is 2
            limit = int(limit)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise bad_request("'concurrency' must be a whole number >= 1, or null for no limit")
        queue.concurrency = limit
    return JSONResponse({"concurrency": queue.concurrency, "running": queue.running_count()})


async def outcomes(request: Request) -> Response:
    authorize(request)
    emulator = emulator_of(request)
    if request.method == "POST":
        payload = await body(request)
        tokens = payload.get("outcomes")
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise bad_request("'outcomes' must be a list of scenario strings")
        route, request_id = text(payload, "route") or "submit", text(payload, "request_id")
        emulator.script_route(route, tokens, endpoint_id=text(payload, "endpoint_id") or "*", request_id=request_id)
    elif request.method == "DELETE":
        emulator.outcomes.clear()
        emulator.route_outcomes.clear()
    return JSONResponse(emulator.scripted_counts())


async def journal(request: Request) -> Response:
    authorize(request)
    emulator = emulator_of(request)
    if request.method == "DELETE":
        emulator.journal.clear()
        return JSONResponse([])
    return JSONResponse(emulator.journal.entries(dict(request.query_params)))


def count(query: Any, name: str, default: int | None, most: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    number = model.whole_number(raw, most)
    if number is None:
        raise bad_request(f"'{name}' must be a whole number >= 0")
    return number


async def requests(request: Request) -> Response:
    """The requests with their row fields (`fal_emulator.ui.model.row`), filtered; paged when `limit` is given."""
    authorize(request)
    emulator = emulator_of(request)
    query = request.query_params
    try:
        filters = model.Filters.parse(query)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    paged = "offset" in query or "limit" in query
    offset = count(query, "offset", 0, model.MAX_OFFSET) or 0
    limit = count(query, "limit", model.PAGE_SIZE if paged else None, model.MAX_PAGE_SIZE)
    model.catch_up(emulator)
    found = model.page(emulator, filters, load_prices(), offset=offset, limit=limit)
    rows = found.rows if paged else found.rows[::-1]  # unpaged: every request, oldest first
    return JSONResponse(rows, headers={"X-Total-Count": str(found.total)})


async def totals(request: Request) -> Response:
    authorize(request)
    emulator = emulator_of(request)
    model.catch_up(emulator)
    return JSONResponse(model.totals(emulator, load_prices()))


def _load(request: Request) -> Any:
    emulator = emulator_of(request)
    request_id = request.path_params["request_id"]
    found = emulator.store.get(request_id)
    if found is None:
        raise RequestNotFound(request_id)
    emulator.queue.status(request_id, poll=False)  # bring it up to date
    return emulator.store.get(request_id)


async def request_detail(request: Request) -> Response:
    authorize(request)
    webhooks = request.app.state.webhooks
    detail = model.detail(
        emulator_of(request), _load(request), load_prices(), deliveries=webhooks.deliveries, jwks=webhooks.signer.jwks
    )
    # an input nested as deep as the edge accepts still renders (json alone fails under this call stack)
    return Response(jsontext.dumps(detail), media_type="application/json")


async def request_action(request: Request) -> Response:
    authorize(request)
    emulator = emulator_of(request)
    found = _load(request)
    action = request.url.path.rsplit("/", 1)[-1]
    try:
        if action == "policy":
            emulator.queue.set_policy(found.request_id, policy_of(await body(request)))
        elif action == "step":
            emulator.queue.step(found.request_id)
        elif action == "complete":
            emulator.queue.complete_now(found.request_id)
        elif action == "cancel":
            if emulator.cancel(None, found.request_id) == "ALREADY_COMPLETED":
                raise ValueError(f"request {found.request_id} is already COMPLETED")
        else:
            error_type = text(await body(request), "error_type") or "internal_server_error"
            if error_type not in FAILURES:
                raise bad_request(f"unknown error_type {error_type!r}; known: {', '.join(sorted(FAILURES))}")
            emulator.fail_now(found.request_id, error_type)
    except ValueError as exc:  # InvalidTransition: already COMPLETED
        raise FalError({"detail": str(exc), "status": Status.COMPLETED.value}, status_code=409) from None
    return JSONResponse(request_summary(emulator.store.get(found.request_id)))


async def webhooks(request: Request) -> Response:
    authorize(request)
    return JSONResponse(list(request.app.state.webhooks.deliveries))


ROUTES = [
    Route(f"{CONTROL_PREFIX}/health", health, methods=["GET"]),
    Route(f"{CONTROL_PREFIX}/reset", reset, methods=["POST"]),
    Route(f"{CONTROL_PREFIX}/seed", seed, methods=["POST"]),
    Route(f"{CONTROL_PREFIX}/clock", clock, methods=["GET", "POST"]),
    Route(f"{CONTROL_PREFIX}/policy", policy, methods=["GET", "PUT"]),
    Route(f"{CONTROL_PREFIX}/concurrency", concurrency, methods=["GET", "PUT"]),
    Route(f"{CONTROL_PREFIX}/outcomes", outcomes, methods=["GET", "POST", "DELETE"]),
    Route(f"{CONTROL_PREFIX}/journal", journal, methods=["GET", "DELETE"]),
    Route(f"{CONTROL_PREFIX}/requests", requests, methods=["GET"]),
    Route(f"{CONTROL_PREFIX}/totals", totals, methods=["GET"]),
    Route(f"{CONTROL_PREFIX}/requests/{{request_id}}", request_detail, methods=["GET"]),
    Route(f"{CONTROL_PREFIX}/requests/{{request_id}}/policy", request_action, methods=["PUT"]),
    *(
        Route(f"{CONTROL_PREFIX}/requests/{{request_id}}/{action}", request_action, methods=["POST"])
        for action in ("step", "complete", "fail", "cancel")
    ),  # fmt: skip
    Route(f"{CONTROL_PREFIX}/webhooks", webhooks, methods=["GET"]),
]
