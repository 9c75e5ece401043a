"""The kit on a recording: `fal-emulator contracts run --cassette FILE` applies fal's rules to recorded traffic
(a cassette of `fal-emulator record`), offline: no request is sent.

    result = run_cassette_suite(Path("veo.har"), endpoints)     # one SuiteResult, named `cassette`

Each recorded answer meets the rules a live run applies to it (`rules.py`): `x_fal_request_id`, `fal_error_shape`,
`submit_answer`, `status_code_by_state`, `queue_position_only_in_queue`, `logs_key`, `cancel_answer`, the status
stream's `sse_matches_polling` and `sse_ends_at_completed`; and the OpenAPI document's answer for its operation
(`status_code_conformance`, `response_schema_conformance`, jsonschema). Each recorded request's sequence of
answers meets the lifecycle rules (`status_never_backwards`, `queue_position_decreases`, `completed_has_result`,
`cancelled_while_queued_never_runs`), and each output stored beside the cassette the media rules
(`file_size_matches`, `media_h264`, `media_dimensions`, `media_duration`, `media_audio`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jsonschema import Draft7Validator

from fal_emulator.cassette import load_cassette
from fal_emulator.catalog import Endpoint, app_id_of
from fal_emulator.contracts import rules
from fal_emulator.contracts.media import check_container
from fal_emulator.contracts.report import SuiteResult, Violation

SUITE = "cassette"
OPERATIONS = {"submit": "submit", "status": "status", "stream": "streamStatus", "result": "result", "cancel": "cancel"}


@dataclass
class Exchange:
    """One recorded entry, read: its index (1-based), kind, request and answer."""

    index: int
    kind: str
    method: str
    url: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]
    body: Any
    offset: float | None
    fal: Mapping[str, Any]

    @property
    def line(self) -> str:
        at = "" if self.offset is None else f", +{self.offset:.3f} s after its submit"
        return f"{self.method} {self.url} (cassette entry #{self.index}{at})"

    def shown(self) -> str:
        text = self.body if isinstance(self.body, str) else json.dumps(self.body, ensure_ascii=False)
        return f"HTTP {self.status} {text[:400]}"


def _read(index: int, entry: Mapping[str, Any]) -> Exchange:
    request, response = entry["request"], entry["response"]
    text = response["content"].get("text")
    try:
        body: Any = json.loads(text) if text is not None else None
    except ValueError:
        body = text
    return Exchange(
        index=index,
        kind=entry["_fal"]["kind"],
        method=request["method"],
        url=request["url"],
        query=dict(parse_qsl(urlsplit(request["url"]).query, keep_blank_values=True)),
        status=response["status"],
        headers={h["name"].lower(): h["value"] for h in response["headers"]},
        body=body,
        offset=entry["_fal"].get("offset"),
        fal=entry["_fal"],
    )


class Checker:
    """Collects violations of one cassette."""

    def __init__(self, path: Path, endpoints: list[Endpoint], result: SuiteResult) -> None:
        self.path = path
        self.endpoints = {endpoint.endpoint_id: endpoint for endpoint in endpoints}
        self.result = result

    def broken(self, rule: str, message: str | None, exchange: Exchange, endpoint: str = "") -> None:
        if message:
            self.result.violations.append(
                Violation(rule, message, SUITE, endpoint=endpoint or str(exchange.fal.get("endpoint_id", "")),
                          request=exchange.line, response=exchange.shown(), reproduce=f"--cassette {self.path}")
            )  # fmt: skip

    def endpoint_of(self, exchange: Exchange) -> Endpoint | None:
        endpoint = self.endpoints.get(str(exchange.fal.get("endpoint_id", "")))
        if endpoint is not None:
            return endpoint
        path = urlsplit(exchange.url).path.strip("/")
        app = app_id_of(path.split("/requests/")[0]) if "/requests/" in path else ""
        return next((e for e in self.endpoints.values() if e.app_id == app), None)

    # -- one answer --------------------------------------------------------------------------------

    def answer(self, exchange: Exchange) -> None:
        if exchange.kind not in OPERATIONS and exchange.kind != "run":
            return
        endpoint = self.endpoint_of(exchange)
        is_json = isinstance(exchange.body, (dict, list))
        if is_json or exchange.status < 500:
            self.broken("x_fal_request_id", rules.request_id_header(exchange.headers), exchange)
        if 400 <= exchange.status < 500:
            self.broken("fal_error_shape", rules.error_shape(exchange.status, exchange.body), exchange)
        logs = rules.logs_flag(exchange.query.get("logs"))
        if exchange.kind == "submit" and exchange.status == 200 and endpoint is not None:
            self.broken("submit_answer", rules.submit_answer(200, exchange.body, endpoint.app_id), exchange)
            self.broken("logs_key", rules.logs_key(exchange.body, logs_requested=False, submitted=True), exchange)
            self.broken("queue_position_only_in_queue", rules.queue_position(exchange.body), exchange)
        elif exchange.kind == "status" and 200 <= exchange.status < 300:
            self.broken("status_code_by_state", rules.status_code_by_state(exchange.status, exchange.body), exchange)
            self.broken("queue_position_only_in_queue", rules.queue_position(exchange.body), exchange)
            self.broken("logs_key", rules.logs_key(exchange.body, logs_requested=logs), exchange)
        elif exchange.kind == "result" and exchange.status in {200, 400}:
            self.broken("status_code_by_state", rules.result_code(exchange.status, exchange.body), exchange)
        elif exchange.kind == "cancel":
            self.broken("cancel_answer", rules.cancel_code(exchange.status, exchange.body), exchange)
        elif exchange.kind == "stream" and exchange.status == 200:
            self.stream(exchange, logs)
        if endpoint is not None and exchange.kind in OPERATIONS:
            self.conformance(exchange, endpoint)

    def stream(self, exchange: Exchange, logs: bool | None) -> None:
        statuses = []
        for event in exchange.fal.get("events", []):
            try:
                body = json.loads(event["data"])
            except ValueError:
                body = None
            if not isinstance(body, dict) or body.get("status") not in rules.RANK:
                self.broken(
                    "sse_matches_polling", f"an event is not a status object: {event['data'][:200]!r}", exchange
                )
                continue
            statuses.append(body["status"])
            self.broken("queue_position_only_in_queue", rules.queue_position(body), exchange)
            self.broken("logs_key", rules.logs_key(body, logs_requested=logs), exchange)
        if exchange.fal.get("complete") and (not statuses or statuses[-1] != "COMPLETED"):
            self.broken("sse_ends_at_completed", f"the stream closed without a COMPLETED event: {statuses}", exchange)

    def conformance(self, exchange: Exchange, endpoint: Endpoint) -> None:
        """The answer against the endpoint's OpenAPI document: a declared status code, and its schema."""
        document = endpoint.document
        operation = _operation(document, OPERATIONS[exchange.kind])
        if operation is None:
            return
        responses = operation.get("responses", {})
        declared = responses.get(str(exchange.status)) or responses.get(f"{str(exchange.status)[0]}XX")
        declared = declared or responses.get("default")
        if declared is None:
            message = f"HTTP {exchange.status} is not declared for {OPERATIONS[exchange.kind]} ({', '.join(responses)})"
            self.broken("status_code_conformance", message, exchange, endpoint.endpoint_id)
            return
        schema = declared.get("content", {}).get("application/json", {}).get("schema")
        if schema is None or not isinstance(exchange.body, (dict, list)):
            return
        components = _json_schema(document.get("components", {}).get("schemas", {}))
        root = {**_json_schema(schema), "components": {"schemas": components}}
        errors = sorted(Draft7Validator(root).iter_errors(exchange.body), key=lambda error: list(error.path))
        if errors:
            where = "/".join(str(part) for part in errors[0].absolute_path) or "(body)"
            message = f"the answer does not match the documented schema at {where}: {errors[0].message}"
            self.broken("response_schema_conformance", message, exchange, endpoint.endpoint_id)

    # -- one request's answers in order ---------------------------------------------------------------

    def lifecycle(self, request_id: str, exchanges: list[Exchange], submit: Exchange | None) -> None:
        seen = "IN_QUEUE"
        position: int | None = None
        queued_cancel = False
        for exchange in sorted(exchanges, key=lambda item: item.offset or 0.0):
            for body in _status_objects(exchange):
                status = body.get("status")
                if status not in rules.RANK:
                    continue
                if rules.RANK[status] < rules.RANK[seen]:
                    self.broken("status_never_backwards", f"request {request_id} went back from {seen} to {status}",
                                exchange)  # fmt: skip
                new_position = body.get("queue_position") if status == "IN_QUEUE" else None
                if isinstance(new_position, int) and position is not None and new_position > position:
                    self.broken("queue_position_decreases", f"queue_position grew from {position} to {new_position}",
                                exchange)  # fmt: skip
                if queued_cancel and status == "IN_PROGRESS":
                    self.broken("cancelled_while_queued_never_runs", "the request ran after it was cancelled", exchange)
                position = new_position if status == "IN_QUEUE" else None
                seen = status if rules.RANK[status] > rules.RANK[seen] else seen
            if exchange.kind == "result" and exchange.status == 400 and seen == "COMPLETED":
                self.broken("completed_has_result", "the result of a COMPLETED request answered 400", exchange)
            if exchange.kind == "cancel" and seen == "COMPLETED" and exchange.status == 202:
                self.broken("cancel_answer", "cancel of a COMPLETED request must answer 400 ALREADY_COMPLETED",
                            exchange)  # fmt: skip
            if exchange.kind == "cancel" and exchange.status == 202 and seen == "IN_QUEUE":
                queued_cancel = True
            if exchange.kind == "cancel" and exchange.status == 400:
                seen = "COMPLETED"

    # -- the stored outputs ----------------------------------------------------------------------------

    def media(self, result: Exchange, submit: Exchange | None, media: Mapping[str, Mapping[str, Any]]) -> None:
        endpoint = self.endpoint_of(result)
        video = result.body.get("video") if isinstance(result.body, dict) else None
        if endpoint is None or not isinstance(video, dict) or video.get("url") not in media:
            return
        stored = media[str(video["url"])]
        path = self.path.parent / str(stored["file"])
        if not path.is_file():
            self.result.errors.append(f"{path} (the output of cassette entry #{result.index}) is missing")
            return
        data = path.read_bytes()
        if video.get("file_size") != len(data):
            message = f"video.file_size is {video.get('file_size')!r} but the recorded file has {len(data)} bytes"
            self.broken("file_size_matches", message, result, endpoint.endpoint_id)
        arguments = submit.fal.get("input") if submit is not None else None
        if isinstance(arguments, dict):
            for violation in check_container(endpoint, arguments, data, result.line):
                self.result.violations.append(violation)


def _status_objects(exchange: Exchange) -> list[dict[str, Any]]:
    if exchange.kind in {"submit", "status"} and 200 <= exchange.status < 300 and isinstance(exchange.body, dict):
        return [exchange.body]
    if exchange.kind == "stream":
        objects = []
        for event in exchange.fal.get("events", []):
            try:
                body = json.loads(event["data"])
            except ValueError:
                continue
            if isinstance(body, dict):
                objects.append(body)
        return objects
    if exchange.kind == "result" and exchange.status not in {400, 401, 404}:
        return [{"status": "COMPLETED"}]  # the output, or the stored error of a failed request
    return []


def _operation(document: Mapping[str, Any], operation_id: str) -> Mapping[str, Any] | None:
    for methods in document.get("paths", {}).values():
        for definition in methods.values():
            if isinstance(definition, dict) and definition.get("operationId") == operation_id:
                return definition
    return None


def _json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes a null alternative."""
    if isinstance(node, dict):
        converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
        if node.get("nullable") is True:
            return {"anyOf": [converted, {"type": "null"}]}
        return converted
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    return node


def run_cassette_suite(path: Path, endpoints: list[Endpoint]) -> SuiteResult:
    """Apply every rule to the cassette at `path`. Raises fal_emulator.cassette.CassetteError for an unreadable one."""
    started = time.monotonic()
    log = load_cassette(path)["log"]
    result = SuiteResult(SUITE)
    checker = Checker(path, endpoints, result)
    exchanges = [_read(index, entry) for index, entry in enumerate(log["entries"], start=1)]
    for exchange, entry in zip(exchanges, log["entries"], strict=True):
        if exchange.kind in {"submit", "run"}:
            text = entry["request"].get("postData", {}).get("text")
            with contextlib.suppress(ValueError):
                exchange.fal = {**exchange.fal, "input": json.loads(text) if text else None}
        checker.answer(exchange)
    result.cases = len(exchanges)
    by_request: dict[str, list[Exchange]] = {}
    submits: dict[str, Exchange] = {}
    for exchange in exchanges:
        request_id = exchange.fal.get("request_id")
        if not request_id:
            continue
        if exchange.kind == "submit":
            submits[str(request_id)] = exchange
        by_request.setdefault(str(request_id), []).append(exchange)
    media = {str(item["url"]): item for item in log["_fal"]["media"]}
    for request_id, recorded in by_request.items():
        checker.lifecycle(request_id, recorded, submits.get(request_id))
        for exchange in recorded:
            if exchange.kind == "result" and exchange.status == 200:
                checker.media(exchange, submits.get(request_id), media)
    for exchange in exchanges:
        if exchange.kind == "run" and exchange.status == 200:
            checker.media(exchange, exchange, media)
    if not exchanges:
        result.skipped.append(f"{path} holds no exchange")
    result.seconds = time.monotonic() - started
    return result
