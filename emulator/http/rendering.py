"""How the emulator's answers look on the wire: fal's JSON bodies and its response headers.

Every answer is `application/json` (except media and the SSE stream) and carries `x-fal-request-id`
(https://fal.ai/docs/documentation/model-apis/common-parameters.md, "Platform Headers").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Scope

from fal_emulator.queue import Status, StatusView
from fal_emulator.service import Emulator

REQUEST_ID_HEADER = "x-fal-request-id"
NO_REQUEST_ID = "x-emulator-no-request-id"  # internal marker: this answer must not get a request id
CONTROL_PREFIX = "/_emulator"
# What a request id can look like: fal's are UUIDs; anything else is unknown and never echoed in a header.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
# A Host header that is a URL's authority as it stands (RFC 3986 reg-name and port characters, ASCII only):
# `urlsplit`, which Starlette's `request.url` runs, would cut, clean or refuse some others.
PLAIN_HOST = re.compile(r"[A-Za-z0-9._~:%!$&'()*+,;=-]+")


def is_request_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and REQUEST_ID_PATTERN.fullmatch(value) is not None


def emulator_of(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def base_url(request: Request) -> str:
    """The scheme and authority the client reached us on, e.g. `https://127.0.0.1:8471`: the `Host` header,
    else the server's address, as Starlette's `request.url` gives them."""
    return plain_base_url(request.scope) or f"{request.url.scheme}://{request.url.netloc}"


def plain_base_url(scope: Scope) -> str | None:
    """`base_url` read from the scope alone, without building the whole URL: for a plain `Host` header (the
    usual case); None for anything else (no Host header, or one that `request.url` would clean or refuse)."""
    scheme = scope.get("scheme", "http")
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
            return f"{scheme}://{host}" if scheme in ("http", "https") and PLAIN_HOST.fullmatch(host) else None
    return None


def dumps(body: Any) -> bytes:
    """JSON bytes as Starlette's JSONResponse makes them (compact, UTF-8), by orjson. What orjson refuses
    (an integer beyond 64 bits, a key that is not a string) is left to the standard library."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


class FalJSONResponse(JSONResponse):
    """A JSONResponse rendered by orjson (NaN and infinities become `null`, where the standard library refuses
    them)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def fal_json(body: Any, status_code: int, request_id: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """fal's JSON answer: `body` with `status_code`, `x-fal-request-id: request_id` and `headers`."""
    return FalJSONResponse(
        body,
        status_code,
        headers={**headers, REQUEST_ID_HEADER: request_id} if headers else {REQUEST_ID_HEADER: request_id},
    )


def request_urls(base: str, app_id: str, request_id: str) -> dict[str, str]:
    """`response_url`, `status_url` and `cancel_url`: app-level paths, as fal's submit answer gives them."""
    url = f"{base.rstrip('/')}/{app_id}/requests/{request_id}"
    return {"response_url": url, "status_url": f"{url}/status", "cancel_url": f"{url}/cancel"}


def status_body(view: StatusView, base: str, *, with_logs: bool, submitted: bool = False) -> dict[str, Any]:
    """A queue status object (fal's `QueueStatus`).

    IN_QUEUE carries `queue_position`; IN_PROGRESS and COMPLETED carry a `logs` key (null unless logs
    were asked for), which fal_client 1.0.3 `_parse_status` requires; COMPLETED carries `metrics`, and
    `error` + `error_type` when the request failed. The submit answer also has `logs: null, metrics: {}`.
    Source: https://fal.ai/docs/documentation/model-apis/inference/queue.md.
    """
    body: dict[str, Any] = {"status": view.status.value, "request_id": view.request_id}
    body.update(request_urls(base, view.app_id, view.request_id))
    if submitted:
        body.update(logs=None, metrics={})
    elif view.status is not Status.IN_QUEUE:
        body["logs"] = view.logs if with_logs else None
    if view.status is Status.IN_QUEUE:
        body["queue_position"] = view.queue_position
    if view.status is Status.COMPLETED:
        body["metrics"] = view.metrics
        if view.error_type or view.error:
            body["error"] = view.error
            body["error_type"] = view.error_type
    return body
