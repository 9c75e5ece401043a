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
import time
from typing import Any

import requests
import schemathesis
from schemathesis import Case, CheckContext, Response

from fal_emulator.catalog import endpoint_from_document
from fal_emulator.contracts import rules
from fal_emulator.contracts.sse import parse_events
from fal_emulator.errors import RequestValidationError
from fal_emulator.validation import InputValidator, parse_json_body

API_OPERATIONS = frozenset({"submit", "status", "streamStatus", "cancel", "result"})
NOT_JSON = object()
# Set by the kit on a status-stream answer it stopped reading (at most N events or S seconds); never on the wire.
CUT_SHORT_HEADER = "x-fal-contracts-cut-short"
FOLLOW_SECONDS = 60.0  # how long a refused input may take to complete (seconds of the target's time)
POLL_PAUSES = (0.01, 0.5)  # seconds between two polls that saw the same status: the first, doubling to the last
FOLLOWS_PER_ENDPOINT = 5  # refused inputs followed to their result, per endpoint (each costs a few requests)


class RuleBroken(AssertionError):
    """An answer broke fal's rule `rule` (a name in `rules.RULES`)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class _Run:
    """What the checks share during one run: the TLS trust for downloads, the bytes served per url, each
    endpoint's input model and how many refused inputs were followed to their result."""

    verify: str | bool = True
    served: dict[str, int]
    validators: dict[str, InputValidator]
    followed: dict[str, int]
    stalled: bool = False  # a refused input never completed: following more would only wait FOLLOW_SECONDS each
    http: requests.Session


def begin_run(verify: str | bool) -> None:
    """Start a run against a target trusting `verify` (a CA bundle path, or a bool)."""
    _Run.verify = verify
    _Run.stalled = False
    _Run.served = {}
    _Run.validators = {}
    _Run.followed = {}
    _Run.http = requests.Session()  # one connection pool (and TLS context) for every follow-up request


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


def _refused(case: Case[Any], endpoint_id: str, raw: object) -> bool:
    """Would the endpoint's runner (FastAPI + its pydantic model, lax mode) refuse the body that was sent?"""
    if endpoint_id not in _Run.validators:
        endpoint = endpoint_from_document(case.operation.schema.raw_schema)
        _Run.validators[endpoint_id] = InputValidator(endpoint.input_schema, endpoint.input_schema.get("title"))
    try:
        value = parse_json_body(raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else b"")
    except RequestValidationError:
        return True
    return bool(_Run.validators[endpoint_id].errors(value))


def _get(url: str, headers: dict[str, str], what: str) -> requests.Response:
    try:
        return _Run.http.get(url, headers=headers, verify=_Run.verify, timeout=30)
    except requests.RequestException as exc:
        raise RuleBroken("bad_input_refused_at_result", f"GET {url} ({what}) failed: {exc}") from None


def _wait_for_completion(status_url: str, headers: dict[str, str]) -> None:
    deadline, last, pause = time.monotonic() + FOLLOW_SECONDS, None, POLL_PAUSES[0]
    while True:
        answer = _get(status_url, headers, "the refused input's status")
        try:
            state = answer.json().get("status") if answer.ok else None
        except (ValueError, AttributeError):
            state = None
        if state is None:
            message = f"GET {status_url} (the refused input's status) answered {answer.status_code}"
            raise RuleBroken("bad_input_refused_at_result", message)
        if state == "COMPLETED":
            return
        if time.monotonic() > deadline:
            _Run.stalled = True  # reported once; later refused inputs are not followed (a run stays bounded)
            message = (
                f"a refused input was still {state} after {FOLLOW_SECONDS:g} s (is the target's policy `manual`, "
                "or its queue full? later refused inputs are not followed in this run)"
            )
            raise RuleBroken("bad_input_refused_at_result", message)
        if state == last:
            time.sleep(pause)
            pause = min(pause * 2, POLL_PAUSES[1])
        last = state


@schemathesis.check
def bad_input_refused_at_result(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Validation where fal does it: the runner (FastAPI + the endpoint's pydantic model, lax mode) refuses a bad
    input, so the submit answers 200 with a request id and the result is the 422. Each submitted body is judged
    with the same model (built from the endpoint's document); refused ones (the first FOLLOWS_PER_ENDPOINT of each
    endpoint) are followed to their result. An emulator's opt-in `--validate-at submit` 422 is accepted too."""
    if fal_operation(case) != "submit":
        return None
    endpoint_id = str(case.operation.schema.raw_schema["info"]["x-fal-metadata"]["endpointId"])
    refused = _refused(case, endpoint_id, response.request.body)
    message = rules.submit_of_input(response.status_code, refused=refused)
    if message:
        raise RuleBroken("bad_input_refused_at_result", message)
    body = _json(response)
    if not refused or response.status_code != 200 or not isinstance(body, dict):
        return None
    status_url, response_url = body.get("status_url"), body.get("response_url")
    if not isinstance(status_url, str) or not isinstance(response_url, str):
        return None  # `submit_answer` reports a submit answer without its URLs
    if _Run.stalled or _Run.followed.get(endpoint_id, 0) >= FOLLOWS_PER_ENDPOINT:
        return None
    _Run.followed[endpoint_id] = _Run.followed.get(endpoint_id, 0) + 1
    authorization = response.request.headers.get("Authorization")
    headers = {"Authorization": str(authorization)} if authorization else {}
    _wait_for_completion(status_url, headers)
    result = _get(response_url, headers, "the refused input's result")
    try:
        parsed = result.json()
    except ValueError:
        parsed = NOT_JSON
    message = rules.result_of_refused_input(result.status_code, parsed, result.headers.get("x-fal-billable-units"))
    if message:
        raise RuleBroken("bad_input_refused_at_result", message)
    return None


FAL_CHECKS = (
    "x_fal_request_id",
    "fal_error_shape",
    "status_code_by_state",
    "queue_position_only_in_queue",
    "logs_key",
    "sse_ends_at_completed",
    "file_size_matches",
    "bad_input_refused_at_result",
)
