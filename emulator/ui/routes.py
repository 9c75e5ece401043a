"""The dashboard's routes, under `/_emulator/ui` (see the package docstring for the whole page).

    GET /_emulator/ui?endpoint_id=&status=&error_type=&offset=&request=   the page, rendered on the server
    GET /_emulator/ui/requests?endpoint_id=&status=&error_type=&offset=   the live list (+ totals and state)
    GET /_emulator/ui/requests/{id}                                       one request's live part
    GET /_emulator/ui/requests/{id}/images/{n}                            its n-th input image
    GET /_emulator/ui/events?version=&request=                            SSE: `change` and `journal` events
    GET /_emulator/ui/static/{file}                                       htmx, the page's script and style

Every route reads; none changes state. Unauthorized calls get 401 (the page: an HTML explanation).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from fal_emulator.errors import RequestNotFound
from fal_emulator.failures import FAILURES
from fal_emulator.http.rendering import CONTROL_PREFIX, emulator_of
from fal_emulator.inputs import decode_data_uri
from fal_emulator.queue import Status
from fal_emulator.scenarios import ROUTES as SCRIPTABLE_ROUTES
from fal_emulator.ui import model
from fal_emulator.ui.prices import load_prices
from fal_emulator.ui.render import TEMPLATES, input_images, local_url, media_files, shown_input

UI = f"{CONTROL_PREFIX}/ui"
STATIC = f"{UI}/static"
TOKEN_HEADER = "x-fal-emulator-token"
COOKIE = "fal_emulator_token"
TICK = 0.2  # seconds between two looks at the state, at least (more when a look is costly)
KEEPALIVE = 15.0  # seconds
JOURNAL_SHOWN = 100  # newest journal entries shown for one request
IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; media-src 'self'; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _token(request: Request) -> str | None:
    return emulator_of(request).settings.control_token


def _same(given: str, token: str) -> bool:
    return secrets.compare_digest(given.encode(), token.encode())


def allowed(request: Request) -> bool:
    """The control plane's rule: with a control token set, the request carries it (header or cookie)."""
    token = _token(request)
    if not token:
        return True
    given = request.headers.get(TOKEN_HEADER) or request.cookies.get(COOKIE) or ""
    return _same(given, token)


def _page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(name).render(ui=UI, static=STATIC, control=CONTROL_PREFIX, **context)
    return HTMLResponse(html, status_code, headers=PAGE_HEADERS)


def unauthorized(request: Request) -> Response:
    if request.url.path == UI:
        return _page("unauthorized.html", 401)
    return PlainTextResponse(f"the dashboard needs the control token ({TOKEN_HEADER})", 401, headers=PAGE_HEADERS)


def _with_cookie(response: Response, token: str | None) -> Response:
    if token:
        response.set_cookie(COOKIE, token, path=UI, httponly=True, samesite="strict")
    return response


def _offset(request: Request) -> int:
    return model.whole_number(request.query_params.get("offset", ""), model.MAX_OFFSET) or 0


def _listing(request: Request, *, oob: bool) -> dict[str, Any]:
    """What the list, the totals and the state readout show: one page and the totals, read after the queue
    caught up with the clock."""
    emulator = emulator_of(request)
    prices = load_prices()
    try:
        filters = model.Filters.parse(request.query_params)
    except ValueError:
        filters = model.Filters()
    model.catch_up(emulator)
    found = model.page(emulator, filters, prices, offset=_offset(request))
    counted = emulator.store.totals()
    deliveries = request.app.state.webhooks.deliveries
    selected = request.query_params.get("request")
    return {
        "page": found,
        "filters": filters,
        "totals": model.totals(emulator, prices, counted),
        "clock": emulator.clock,
        "now": emulator.clock.now(),
        "policy": emulator.queue.policy.describe(),
        "policies": {key: value.describe() for key, value in emulator.policies.items()},
        "outcomes": emulator.scripted_counts(),
        "version": model.version(emulator, counted, len(deliveries), model.selected_state(emulator, selected)),
        "selected_id": selected,
        "oob": oob,
    }


def _detail(request: Request, request_id: str) -> dict[str, Any] | None:
    """One request as the page shows it, or None when it is not (or no longer) stored."""
    emulator = emulator_of(request)
    try:
        emulator.queue.status(request_id, poll=False)  # bring it up to date
    except RequestNotFound:
        return None
    found = emulator.store.get(request_id)
    if found is None:
        return None
    webhooks = request.app.state.webhooks
    detail = model.detail(emulator, found, load_prices(), deliveries=webhooks.deliveries, jwks=webhooks.signer.jwks)
    journal = emulator.journal.entries({"request_id": request_id})
    completed = found.status is Status.COMPLETED
    return {
        "d": detail,
        "completed": completed,
        "succeeded": completed and found.outcome.ok,
        "media": media_files(found.outcome.body, lambda url: local_url(url, request)) if completed else [],
        "images": input_images(found.input),
        "shown_input": json.dumps(shown_input(found.input), indent=2, ensure_ascii=False),
        "outcome_body": json.dumps(found.outcome.body, indent=2, ensure_ascii=False),
        "journal": journal[-JOURNAL_SHOWN:][::-1],
        "journal_total": len(journal),
    }


async def page(request: Request) -> Response:
    """The whole page. `?token=` (once) sets the cookie and redirects to the same URL without it."""
    token = _token(request)
    given = request.query_params.get("token")
    if given is not None:
        if token and not _same(given, token):
            return unauthorized(request)
        url = request.url.remove_query_params("token")
        target = url.path + (f"?{url.query}" if url.query else "")
        return _with_cookie(RedirectResponse(target, 303, headers={"Referrer-Policy": "no-referrer"}), token)
    if not allowed(request):
        return unauthorized(request)
    emulator = emulator_of(request)
    context = _listing(request, oob=False)
    selected = context["selected_id"]
    context.update(
        token=token,
        selected=_detail(request, selected) if selected else None,
        endpoints=sorted(endpoint.endpoint_id for endpoint in emulator.catalog),
        failures=list(FAILURES.values()),  # the Fail menu, in the catalogue's order (groupby keeps it)
        error_types=sorted(FAILURES),
        statuses=model.STATUSES,
        routes=SCRIPTABLE_ROUTES,
    )
    return _with_cookie(_page("page.html", **context), token)


async def requests_fragment(request: Request) -> Response:
    if not allowed(request):
        return unauthorized(request)
    return _page("requests.html", **_listing(request, oob=True))


async def detail_fragment(request: Request) -> Response:
    if not allowed(request):
        return unauthorized(request)
    request_id = request.path_params["request_id"]
    return _page("detail_live.html", selected_id=request_id, selected=_detail(request, request_id))


async def input_image(request: Request) -> Response:
    """An input image of a request, decoded from its `data:` URI or read from an upload; only image types."""
    if not allowed(request):
        return unauthorized(request)
    emulator = emulator_of(request)
    found = emulator.store.get(request.path_params["request_id"])
    images = input_images(found.input) if found is not None else []
    index = request.path_params["index"]
    if index >= len(images):
        return PlainTextResponse("no such input image", 404)
    url = images[index].url
    decoded = decode_data_uri(url) if url.startswith("data:") else emulator.uploads.read_url(url)
    if decoded is None or decoded[0] not in IMAGE_TYPES:
        return PlainTextResponse("not an image the dashboard shows (JPEG, PNG, WebP or GIF)", 415)
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'"}  # fmt: skip
    return Response(decoded[1], media_type=decoded[0], headers=headers)


async def events(request: Request) -> Response:
    """SSE: `event: change` when what the page shows changes (see `model.version`), `event: journal` when
    the journal grows, `: keepalive` comments; `request` is the request the page shows in full. Looks every
    TICK seconds, or less often when a look is costly, so an open page never takes more than a fifth of a core."""
    if not allowed(request):
        return unauthorized(request)
    emulator = emulator_of(request)
    webhooks = request.app.state.webhooks

    async def stream() -> AsyncIterator[str]:
        last, journal, sent = request.query_params.get("version"), emulator.journal.last_seq, time.monotonic()
        selected = request.query_params.get("request")
        yield "retry: 1000\n\n"
        while True:
            started = time.perf_counter()
            model.catch_up(emulator)
            shown = model.selected_state(emulator, selected)
            current = model.version(emulator, emulator.store.totals(), len(webhooks.deliveries), shown)
            cost = time.perf_counter() - started
            if current != last:
                last, sent = current, time.monotonic()
                yield f"event: change\ndata: {current}\n\n"
            if emulator.journal.last_seq != journal:
                journal, sent = emulator.journal.last_seq, time.monotonic()
                yield f"event: journal\ndata: {journal}\n\n"
            if time.monotonic() - sent >= KEEPALIVE:
                sent = time.monotonic()
                yield ": keepalive\n\n"
            await asyncio.sleep(max(TICK, cost * 4))

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


ROUTES: list[BaseRoute] = [
    Route(UI, page, methods=["GET"]),
    Route(f"{UI}/requests", requests_fragment, methods=["GET"]),
    Route(f"{UI}/requests/{{request_id}}", detail_fragment, methods=["GET"]),
    Route(f"{UI}/requests/{{request_id}}/images/{{index:int}}", input_image, methods=["GET"]),
    Route(f"{UI}/events", events, methods=["GET"]),
    Mount(STATIC, app=StaticFiles(packages=[("fal_emulator.ui", "static")], follow_symlink=True), name="ui-static"),
]
