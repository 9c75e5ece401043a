"""OpenAPI documents of the routes fal's per-endpoint documents (`openapi/`) do not describe, so stock tools
(Schemathesis, Prism, an API client generator) can read and attack every route:

    GET /_emulator/openapi.json       the control plane, the dashboard, fal's storage API and the webhook
                                      JWKS (`emulator-openapi.yaml`, a data file of the package; its enums of
                                      endpoint ids, error types, scenario tokens and the dashboard's static
                                      files are filled in here)
    GET /_emulator/openapi-sync.json  the synchronous host `POST /run/{endpoint id}` (and `.../stream`), the
                                      result alias
                                      `GET /{endpoint id}/requests/{request_id}/response`, one operation per
                                      endpoint, built from the endpoint's document in `openapi/`

Both are open (no control token), like `/_emulator/health`. A server with no control token serves the first
without the token's security requirement: its control plane answers loopback clients without one.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fal_emulator.catalog import Catalog, SafeLoader
from fal_emulator.failures import FAILURES
from fal_emulator.http.rendering import CONTROL_PREFIX, emulator_of
from fal_emulator.queue import PRESETS
from fal_emulator.scenarios import REJECTIONS

DOCUMENT = Path(__file__).resolve().parent.parent / "emulator-openapi.yaml"
STATIC_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"  # the dashboard's files
JSON = dict[str, Any]
SCENARIO_TOKENS = ("ok", *REJECTIONS, "drop", "truncate", "slow", *PRESETS)


@functools.lru_cache(maxsize=1)
def _template() -> JSON:
    document: JSON = yaml.load(DOCUMENT.read_text(encoding="utf-8"), Loader=SafeLoader)
    return document


def emulator_document(catalog: Catalog) -> JSON:
    """The control-plane and storage document, with its `x-filled-by` enums filled from `catalog` and the
    catalogue of fal errors."""
    document = copy.deepcopy(_template())
    schemas = document["components"]["schemas"]
    schemas["EndpointId"]["enum"] = [endpoint.endpoint_id for endpoint in catalog]
    schemas["ErrorType"]["enum"] = sorted(FAILURES)
    schemas["Scenario"]["enum"] = sorted({*FAILURES, *SCENARIO_TOKENS})
    static = document["paths"]["/_emulator/ui/static/{file}"]["get"]["parameters"][0]["schema"]
    static["enum"] = sorted(path.name for path in STATIC_DIR.iterdir() if path.is_file())
    return document


def _json(description: str, schema: JSON | None = None, **extra: Any) -> JSON:
    response: JSON = {"description": description, **extra}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return response


ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
VALIDATION_ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "array", "items": {
        "type": "object", "required": ["loc", "msg", "type"],
        "properties": {"loc": {"type": "array"}, "msg": {"type": "string"}, "type": {"type": "string"}}}}},
    "required": ["detail"],
}  # fmt: skip
NOT_FOUND = {"type": "object", "properties": {"status": {"enum": ["NOT_FOUND"]}}, "required": ["status"]}
REQUEST_ID = {"x-fal-request-id": {"required": True, "schema": {"type": "string"}}}


def sync_document(catalog: Catalog) -> JSON:
    """fal's synchronous API (`https://fal.run/{endpoint id}`, served under `/run/`) and the result alias, from
    each endpoint's input and output schemas (https://fal.ai/docs/documentation/model-apis/inference/synchronous.md)."""
    paths: JSON = {}
    stored_error = _json("The request failed: its stored error, with its status code",
                         {"anyOf": [VALIDATION_ERROR, ERROR]})  # fmt: skip
    for endpoint in catalog:
        output = _json("The output", copy.deepcopy(dict(endpoint.output_schema)), headers=REQUEST_ID)
        body = {"schema": copy.deepcopy(dict(endpoint.input_schema)),
                "example": copy.deepcopy(dict(endpoint.example_input))}  # fmt: skip
        paths[f"/run/{endpoint.endpoint_id}"] = {"post": {
            "operationId": f"run {endpoint.endpoint_id}",
            "summary": f"Run {endpoint.endpoint_id} and wait for its output",
            "requestBody": {"required": True, "content": {"application/json": body}},
            "responses": {"200": output, "401": _json("No key, or a wrong one", ERROR),
                          "422": _json("Invalid input", VALIDATION_ERROR), "default": stored_error},
        }}  # fmt: skip
        event = {"type": "object", "properties": {"event": {"type": "string"}, "data": {
            "type": "string", "contentMediaType": "application/json", "contentSchema": dict(endpoint.output_schema)}},
            "required": ["data"]}  # fmt: skip
        stream = {"description": "One event whose data is the output (`event: error` and fal's error body if it "
                  "fails after the stream began)", "headers": REQUEST_ID,
                  "content": {"text/event-stream": {"schema": event}}}  # fmt: skip
        paths[f"/run/{endpoint.endpoint_id}/stream"] = {"post": {
            "operationId": f"stream {endpoint.endpoint_id}",
            "summary": f"Run {endpoint.endpoint_id}; its output comes as a server-sent event",
            "requestBody": {"required": True, "content": {"application/json": copy.deepcopy(body)}},
            "responses": {"200": stream, "401": _json("No key, or a wrong one", ERROR),
                          "422": _json("Invalid input", VALIDATION_ERROR), "default": stored_error},
        }}  # fmt: skip
        paths[f"/{endpoint.endpoint_id}/requests/{{request_id}}/response"] = {"get": {
            "operationId": f"response {endpoint.endpoint_id}",
            "summary": "The result: an alias of GET .../requests/{request_id}",
            "parameters": [{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": output, "400": _json("Not completed yet", ERROR),
                          "401": _json("No key, or a wrong one", ERROR), "404": _json("Request not found", NOT_FOUND),
                          "default": stored_error},
        }}  # fmt: skip
    return {
        "openapi": "3.0.4",
        "info": {
            "title": "fal's synchronous API (fal.run) and the result alias, as the emulator serves them",
            "version": "1.0.0",
        },  # fmt: skip
        "security": [{"apiKeyAuth": []}],
        "components": {"securitySchemes": {"apiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization"}}},
        "paths": paths,
    }


def _cached(request: Request, name: str, build: Any) -> JSON:
    state = request.app.state
    if not hasattr(state, name):
        setattr(state, name, build(emulator_of(request).catalog))
    document: JSON = getattr(state, name)
    return document


def without_control_token(document: JSON) -> JSON:
    """`document` for a server with no control token: its control-plane operations need no
    `X-Fal-Emulator-Token` (loopback clients call them without one), so stock tools do not expect a 401."""
    served = copy.deepcopy(document)
    served["security"] = []
    served["components"]["securitySchemes"].pop("controlToken", None)
    for operations in served["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "security" in operation:
                kept = [need for need in operation["security"] if "controlToken" not in need]
                operation["security"] = kept
    return served


async def emulator_openapi(request: Request) -> Response:
    document = _cached(request, "emulator_openapi", emulator_document)
    if not emulator_of(request).settings.control_token:
        document = _cached(request, "emulator_openapi_open", lambda catalog: without_control_token(document))
    return JSONResponse(document)


async def sync_openapi(request: Request) -> Response:
    return JSONResponse(_cached(request, "sync_openapi", sync_document))


ROUTES = [
    Route(f"{CONTROL_PREFIX}/openapi.json", emulator_openapi, methods=["GET"]),
    Route(f"{CONTROL_PREFIX}/openapi-sync.json", sync_openapi, methods=["GET"]),
]
