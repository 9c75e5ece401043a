"""`fal-emulator record`: a recording proxy in front of fal (or any server that speaks fal's protocol).

Clients talk to it exactly as to `fal-emulator serve` (same listeners, same `fal-emulator env`, and the JS client's
proxy mode: `x-fal-target-url`); it forwards every
call upstream with the user's own key and writes every exchange into one cassette (`fal_emulator.cassette`):

    POST /{endpoint id}                    -> {queue}/{endpoint id}        submit  (spend-guarded)
    GET  /{app}/requests/{id}/status[...]  -> {queue}/...                  status, stream (SSE, each event timed)
    GET|PUT /{app}/requests/{id}[/cancel]  -> {queue}/...                  result, cancel
    POST /run/{endpoint id}                -> {run}/{endpoint id}          synchronous run (spend-guarded)
    /storage/..., /.well-known/...         -> {rest}/...                   uploads, the webhook JWKS
    POST /files/upload                     -> {cdn}/files/upload           CDN uploads
    GET  /files/recorded/{sha256}/{name}   the recorded output media, served from beside the cassette

Upstream URLs in answers (`status_url`, `response_url`, `cancel_url`, upload URLs) are rewritten to this server,
and each output File is fetched once (without credentials), stored by digest and served from here. A submit's
`fal_webhook` is pointed at this server when upstream can reach it (a loopback upstream, or `--public-url`); the
webhook is recorded and forwarded unchanged (signature included) to the user's URL.

The key upstream gets is the user's own (`FAL_KEY` in the recorder's environment); it replaces a client's
`Authorization: Key …` (a client's `Bearer` CDN token passes through) and is never written: the cassette redacts
credentials (`fal_emulator.cassette`). Every submit is charged against `--allow-spend` first; past it, the submit is
answered 402 here and nothing reaches fal.

This module is the routes (forwarding, the status stream, webhooks, uploads, recorded media) and the app; the
recorder's state, its rewriting of answers and its cassette writing are `fal_emulator.http.recorder_backend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fal_emulator.cassette import now_iso
from fal_emulator.fal_hosts import role_of
from fal_emulator.http.host_routing import media_base_url
from fal_emulator.http.media_routes import recorded_file
from fal_emulator.http.middleware import ProxyMiddleware
from fal_emulator.http.recorder_backend import HOP_BY_HOP, Recorder, SpendRefused
from fal_emulator.http.rendering import REQUEST_ID_HEADER, base_url
from fal_emulator.replay import MEDIA_PATH

KEEPALIVE_SECONDS = 15.0


def _answer_headers(answer: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "content-type"}


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def recorder_of(request: Request) -> Recorder:
    recorder: Recorder = request.app.state.recorder
    return recorder


async def forward(request: Request) -> Response:
    """Forward one call upstream, record it, and answer what upstream answered (URLs pointing here)."""
    recorder = recorder_of(request)
    base = base_url(request)
    path = request.url.path
    if role_of(request.headers.get("host")) == "run":  # fal.run through the HTTPS proxy: the run API
        path = "/run" + path
    kind, url, endpoint_id, request_id = recorder.classify(request.method, path)
    query = request.url.query
    body = await request.body()
    charged = 0.0
    if kind in {"submit", "run"} and request.method == "POST":
        query = recorder.webhook_target(query, base)
        try:
            charged = recorder.guard.charge(str(endpoint_id), _json(body))
        except SpendRefused as exc:
            return JSONResponse({"detail": f"fal-emulator record: {exc}", "error_type": "spend_limit"}, 402)
        recorder.cassette.spent(recorder.guard.spent)
    target = f"{url}?{query}" if query else url
    headers = recorder.upstream_headers(request)
    if kind == "stream":
        return await _stream(request, recorder, target, headers, request_id, base)
    started, clock = now_iso(), time.monotonic()
    try:
        answer = await recorder.client.request(request.method, target, headers=headers, content=body)
    except httpx.HTTPError as exc:
        recorder.guard.refund(charged)
        return JSONResponse({"detail": f"fal-emulator record: upstream {url} failed: {exc!r}"}, 502)
    content = answer.content
    parsed = _json(content) if answer.headers.get("content-type", "").startswith("application/json") else None
    fal: dict[str, Any] = {}
    if kind in {"submit", "run"} and endpoint_id:
        fal["endpoint_id"] = endpoint_id
        if answer.status_code != 200:
            recorder.guard.refund(charged)
            recorder.cassette.spent(recorder.guard.spent)
    if kind == "submit" and answer.status_code == 200 and isinstance(parsed, dict) and parsed.get("request_id"):
        request_id = str(parsed["request_id"])
        recorder.submitted[request_id] = (clock, str(endpoint_id))
        fal.update(request_id=request_id, offset=0.0)
    else:
        fal.update(recorder.offset(request_id))
        if endpoint_id and request_id:
            fal["endpoint_id"] = endpoint_id
    if parsed is not None and isinstance(parsed, dict) and "upload_url" in parsed:
        token = secrets.token_urlsafe(12)
        recorder.uploads[token] = str(parsed["upload_url"])
        parsed = {**parsed, "upload_url": f"{base}/_emulator/record/upload/{token}"}
    recorder.record(kind, request, url if not query else f"{url}?{query}", body, answer, content, started,
                    time.monotonic() - clock, fal)  # fmt: skip
    headers_out = _answer_headers(answer)
    if parsed is None:
        return Response(content, answer.status_code, headers=headers_out, media_type=answer.headers.get("content-type"))
    return JSONResponse(await recorder.client_view(parsed, base, media_base_url(request)), answer.status_code,
                        headers=headers_out)  # fmt: skip


async def _stream(
    request: Request, recorder: Recorder, target: str, headers: dict[str, str], request_id: str | None, base: str
) -> Response:
    """The status stream, event by event: each is timed, recorded, and passed on with its URLs pointing here."""
    started, clock = now_iso(), time.monotonic()
    upstream = await recorder.client.send(recorder.client.build_request("GET", target, headers=headers), stream=True)
    fal = {**recorder.offset(request_id), "events": []}
    endpoint = recorder.submitted.get(request_id or "", (0.0, None))[1]
    if endpoint:
        fal["endpoint_id"] = endpoint
    if upstream.status_code != 200 or not upstream.headers.get("content-type", "").startswith("text/event-stream"):
        content = await upstream.aread()
        await upstream.aclose()
        recorder.record("stream", request, target, b"", upstream, content, started, time.monotonic() - clock, fal)
        parsed = _json(content)
        if parsed is None:
            return Response(content, upstream.status_code, headers=_answer_headers(upstream))
        return JSONResponse(await recorder.client_view(parsed, base), upstream.status_code,
                            headers=_answer_headers(upstream))  # fmt: skip

    async def events() -> AsyncIterator[str]:
        text = []
        try:
            async for event in _with_keepalives(EventSource(upstream).aiter_sse()):
                if event is None:  # upstream silent for KEEPALIVE_SECONDS: keep our client's connection alive
                    yield ": keepalive\n\n"
                    continue
                stamp = recorder.offset(request_id).get("offset", round(time.monotonic() - clock, 3))
                fal["events"].append({"offset": stamp, "data": event.data,
                                      **({"event": event.event} if event.event != "message" else {})})  # fmt: skip
                text.append(f"data: {event.data}\n\n")
                data = _json(event.data.encode())
                shown = json.dumps(await recorder.client_view(data, base)) if data is not None else event.data
                yield ("" if event.event == "message" else f"event: {event.event}\n") + f"data: {shown}\n\n"
            fal["complete"] = True  # upstream closed the stream (not our client)
        finally:
            await upstream.aclose()
            content = "".join(text).encode()
            recorder.record("stream", request, target, b"", upstream, content, started, time.monotonic() - clock, fal)

    out = {REQUEST_ID_HEADER: upstream.headers.get(REQUEST_ID_HEADER, request_id or ""), "Cache-Control": "no-cache"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=out)


async def _with_keepalives(events: AsyncIterator[ServerSentEvent]) -> AsyncIterator[ServerSentEvent | None]:
    """The events, with None whenever KEEPALIVE_SECONDS pass without one (SSE comments are not events)."""
    iterator = events.__aiter__()
    pending: asyncio.Future[ServerSentEvent] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
            if not done:
                yield None
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield event
    finally:
        if pending is not None and not pending.done():
            pending.cancel()


async def webhook(request: Request) -> Response:
    """A webhook from upstream: recorded, then forwarded unchanged to the user's URL (its answer passed back)."""
    recorder = recorder_of(request)
    user_url = recorder.webhooks.get(request.path_params["token"])
    if user_url is None:
        return JSONResponse({"detail": "Unknown webhook"}, 404)
    body = await request.body()
    parsed = _json(body)
    request_id = str(parsed.get("request_id")) if isinstance(parsed, dict) and parsed.get("request_id") else None
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    started, clock = now_iso(), time.monotonic()
    try:
        answer = await recorder.client.post(user_url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        answer = httpx.Response(502, json={"detail": f"forwarding to {user_url} failed: {exc!r}"})
    fal = {**recorder.offset(request_id), **({"request_id": request_id} if request_id else {})}
    recorder.record("webhook", request, user_url, body, answer, answer.content, started, time.monotonic() - clock, fal)
    return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))


async def upload(request: Request) -> Response:
    """An upload's bytes (`PUT` to the URL initiate gave), forwarded to upstream's upload URL and recorded."""
    recorder = recorder_of(request)
    target = recorder.uploads.get(request.path_params["token"])
    if target is None:
        return JSONResponse({"detail": "Unknown upload"}, 404)
    body = await request.body()
    content_type = request.headers.get("content-type", "application/octet-stream")
    started, clock = now_iso(), time.monotonic()
    answer = await recorder.client.put(target, content=body, headers={"content-type": content_type})
    stored = recorder.cassette.add_media(target, body, content_type) if body else None
    fal = {"body_sha256": stored["sha256"]} if stored else {}
    recorder.record("upload", request, target, b"", answer, answer.content, started, time.monotonic() - clock, fal)
    parsed = _json(answer.content)
    if parsed is None:
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))
    return JSONResponse(await recorder.client_view(parsed, base_url(request)), answer.status_code)


async def media(request: Request) -> Response:
    """`GET /files/recorded/{sha256}/{name}`: an output file recorded so far."""
    recorder = recorder_of(request)
    digest = request.path_params["digest"]
    found = next((item for item in recorder.cassette.log["_fal"]["media"] if item["sha256"] == digest), None)
    if found is None:
        return JSONResponse({"detail": f"File {request.path_params['file_name']} not found"}, 404)
    return recorded_file(recorder.cassette.path.parent / found["file"], found["content_type"], digest, request)


async def health(request: Request) -> JSONResponse:
    recorder = recorder_of(request)
    entries = len(recorder.cassette.log["entries"])
    return JSONResponse({"status": "ok", "mode": "record", "cassette": str(recorder.cassette.path),
                         "entries": entries, "spent_usd": recorder.guard.spent})  # fmt: skip


def create_recorder_app(recorder: Recorder) -> Starlette:
    """The recording proxy's app; it closes its upstream client when the server stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await recorder.client.aclose()

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    app = Starlette(
        routes=[
            Route("/_emulator/health", health, methods=["GET"]),
            Route("/_emulator/record/webhook/{token}", webhook, methods=["POST"]),
            Route("/_emulator/record/upload/{token}", upload, methods=["PUT"]),
            Route(MEDIA_PATH + "/{digest}/{file_name}", media, methods=["GET", "HEAD"]),
            Route("/{path:path}", forward, methods=methods),
        ],
        lifespan=lifespan,
    )
    app.state.recorder = recorder
    app.add_middleware(ProxyMiddleware)  # @fal-ai/client's proxy mode: the target in `x-fal-target-url`
    return app
