"""fal's rules as Schemathesis checks, run on every answer of every phase (examples, fuzzing, stateful) next to
Schemathesis' own checks.

Importing this module registers them with the public `@schemathesis.check` decorator (process-wide); each one
only looks at operations of a fal queue document (one with `info.x-fal-metadata`), so other schemas in the same
process are left alone. A check's name is the rule it reports (`fal_emulator.contracts.rules.RULES`), and each
raises `RuleBroken` (an AssertionError carrying the rule) from its own line, so Schemathesis keeps every one.
"""

from __future__ import annotations

import functools
import json
import ssl
from typing import Any

import requests
import schemathesis
from schemathesis import Case, CheckContext, Response

from fal_emulator.contracts import rules
from fal_emulator.contracts.sse import parse_events

API_OPERATIONS = frozenset({"submit", "status", "streamStatus", "cancel", "result"})
NOT_JSON = object()
# Set by the kit on a status-stream answer it stopped reading (at most N events or S seconds); never on the wire.
CUT_SHORT_HEADER = "x-fal-contracts-cut-short"


class RuleBroken(AssertionError):
    """An answer broke fal's rule `rule` (a name in `rules.RULES`)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class _Run:
    """What the checks share during one run: the TLS trust for downloads, and the bytes served per url."""

    verify: str | bool = True
    served: dict[str, int]


def begin_run(verify: str | bool) -> None:
    """Start a run against a target trusting `verify` (a CA bundle path, or a bool)."""
    _Run.verify = verify
    _Run.served = {}


begin_run(True)


@functools.lru_cache(maxsize=8)
def ssl_verify(verify: str | bool) -> ssl.SSLContext | bool:
    """An SSL context trusting the CA bundle `verify` (a path), or `verify` itself when it is a bool (one context
    per bundle: loading a bundle costs milliseconds)."""
    return verify if isinstance(verify, bool) else ssl.create_default_context(cafile=verify)


def fal_operation(case: Case[Any]) -> str | None:
    """The operationId of `case` when it belongs to a fal queue document, else None.

    A case sent with another method than its operation's (the coverage phase's unexpected methods) is not
    an answer of that operation, so it is None too.
    """
    if case.method.upper() != case.operation.method.upper():
        return None
    raw_schema = case.operation.schema.raw_schema
    if not isinstance(raw_schema, dict) or "x-fal-metadata" not in raw_schema.get("info", {}):
        return None
    methods = raw_schema.get("paths", {}).get(case.operation.path, {})
    definition = methods.get(case.method.lower()) if isinstance(methods, dict) else None
    operation_id = definition.get("operationId") if isinstance(definition, dict) else None
    return operation_id if isinstance(operation_id, str) else None


def _json(response: Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return NOT_JSON


def _logs_requested(case: Case[Any]) -> bool | None:
    return rules.logs_flag((case.query or {}).get("logs"))


@schemathesis.check
def x_fal_request_id(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every answer of the queue API carries `x-fal-request-id`."""
    message = rules.request_id_header(response.headers) if fal_operation(case) in API_OPERATIONS else None
    if message:
        raise RuleBroken("x_fal_request_id", message)
    return None


@schemathesis.check
def fal_error_shape(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A 4xx answer of the queue API is in fal's error shape."""
    message = None
    if fal_operation(case) in API_OPERATIONS and 400 <= response.status_code < 500:
        message = rules.error_shape(response.status_code, _json(response))
    if message:
        raise RuleBroken("fal_error_shape", message)
    return None


@schemathesis.check
def status_code_by_state(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """202 while running and 200 when COMPLETED (status); result and cancel codes agree with their bodies."""
    operation = fal_operation(case)
    code = response.status_code
    message = None
    if operation == "status" and 200 <= code < 300:
        message = rules.status_code_by_state(code, _json(response))
    elif operation == "result" and code in {200, 400}:
        message = rules.result_code(code, _json(response))
    elif operation == "cancel" and code in {200, 202, 400, 404}:
        message = rules.cancel_code(code, _json(response))
    if message:
        raise RuleBroken("status_code_by_state", message)
    return None


def _status_objects(operation: str | None, response: Response) -> list[Any]:
    """The status objects an answer carries: the body (submit, status) or each stream event."""
    if operation in {"submit", "status"} and 200 <= response.status_code < 300:
        return [_json(response)]
    if operation == "streamStatus" and response.status_code == 200:
        events = []
        for data in parse_events(response.content):
            try:
                events.append(json.loads(data))
            except ValueError:
                events.append(NOT_JSON)
        return events
    return []


@schemathesis.check
def queue_position_only_in_queue(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """queue_position while IN_QUEUE, and only then."""
    for body in _status_objects(fal_operation(case), response):
        message = rules.queue_position(body)
        if message:
            raise RuleBroken("queue_position_only_in_queue", message)
    return None


@schemathesis.check
def logs_key(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """The `logs` key: absent or null while queued, present once running; a list only when asked for."""
    operation = fal_operation(case)
    for body in _status_objects(operation, response):
        message = rules.logs_key(body, logs_requested=_logs_requested(case), submitted=operation == "submit")
        if message:
            raise RuleBroken("logs_key", message)
    return None


@schemathesis.check
def sse_ends_at_completed(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A status stream that the server closed (not cut short by the kit) ended with a COMPLETED event."""
    if fal_operation(case) != "streamStatus" or response.status_code != 200 or CUT_SHORT_HEADER in response.headers:
        return None
    events = _status_objects("streamStatus", response)
    statuses = [body.get("status") if isinstance(body, dict) else None for body in events]
    if not statuses or statuses[-1] != "COMPLETED":
        raise RuleBroken("sse_ends_at_completed", f"the stream closed without a COMPLETED event (events: {statuses})")
    ranks = [rules.RANK.get(str(status), -1) for status in statuses]
    if ranks != sorted(ranks):
        raise RuleBroken("sse_ends_at_completed", f"the stream's statuses went backwards: {statuses}")
    return None


@schemathesis.check
def file_size_matches(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A completed result's `video.file_size` equals the bytes served at `video.url` (downloaded once per url)."""
    if fal_operation(case) != "result" or response.status_code != 200:
        return None
    body = _json(response)
    video = body.get("video") if isinstance(body, dict) else None
    if not isinstance(video, dict) or not isinstance(video.get("url"), str):
        return None
    url, declared = video["url"], video.get("file_size")
    if url not in _Run.served:
        try:
            served = requests.get(url, verify=_Run.verify, timeout=60)
        except requests.RequestException as exc:
            raise RuleBroken("file_size_matches", f"GET {url} (video.url) failed: {exc}") from None
        if served.status_code != 200:
            raise RuleBroken("file_size_matches", f"GET {url} answered {served.status_code}, not the video")
        _Run.served[url] = len(served.content)
    if declared != _Run.served[url]:
        message = f"video.file_size is {declared!r} but {url} serves {_Run.served[url]} bytes"
        raise RuleBroken("file_size_matches", message)
    return None


FAL_CHECKS = (
    "x_fal_request_id",
    "fal_error_shape",
    "status_code_by_state",
    "queue_position_only_in_queue",
    "logs_key",
    "sse_ends_at_completed",
    "file_size_matches",
)
