"""The kit's side of every Schemathesis case: send it (status streams read by the kit, `read_stream`: at most
`MAX_STREAM_EVENTS` events or `STREAM_SECONDS` seconds, so a stream that never closes cannot hang a run), run every
check on the answer, and keep each distinct failure as a Violation named by its rule (`Collector`, `rule_of`).
The Schemathesis suite (`openapi_suite.py`) and its coverage phase (`coverage.py`) share it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
import requests
import schemathesis
from schemathesis import Case

from fal_emulator.contracts import checks
from fal_emulator.contracts.report import SuiteResult, Violation
from fal_emulator.contracts.sse import parse_events
from fal_emulator.contracts.target import Target

SUITE = "openapi"  # the suite a Violation found here belongs to
# Schemathesis checks each status event's shape; the lifecycle machine checks how a stream ends. So a stream is
# read for at most 3 events (IN_QUEUE, IN_PROGRESS, COMPLETED) or STREAM_SECONDS, whichever comes first.
MAX_STREAM_EVENTS = 3
STREAM_SECONDS = 1.0

# The rule each of Schemathesis' failures reports, by failure class, for releases whose failures do not name
# their check (`Failure.checks` appeared in later 4.x releases).
FAILURE_CHECKS = {
    "UndefinedStatusCode": "status_code_conformance",
    "MissingContentType": "content_type_conformance",
    "MalformedMediaType": "content_type_conformance",
    "UndefinedContentType": "content_type_conformance",
    "MissingHeaders": "response_headers_conformance",
    "JsonSchemaError": "response_schema_conformance",
    "MalformedJson": "response_schema_conformance",
    "ContentDeserializationError": "response_schema_conformance",
    "AcceptedNegativeData": "negative_data_rejection",
    "RejectedPositiveData": "positive_data_acceptance",
    "MissingHeaderNotRejected": "missing_required_header",
    "UnsupportedMethodResponse": "unsupported_method",
    "UseAfterFree": "use_after_free",
    "EnsureResourceAvailability": "ensure_resource_availability",
    "IgnoredAuth": "ignored_auth",
    "ServerError": "not_a_server_error",
    "ResponseTimeExceeded": "max_response_time",
}


def disabled_checks(config: Mapping[str, Any], operation_id: str | None) -> frozenset[str]:
    """The checks `config` (the dict form of `schemathesis.toml`, as `schemathesis_config` makes it) turns off,
    for every operation or for `operation_id` (its `operations` entries matched by `include-operation-id`)."""
    sections = [config] + [
        entry
        for entry in config.get("operations", [])
        if operation_id is not None and operation_id in _listed(entry.get("include-operation-id"))
    ]
    return frozenset(
        name
        for section in sections
        for name, options in section.get("checks", {}).items()
        if isinstance(options, Mapping) and options.get("enabled") is False
    )


def _listed(value: object) -> list[str]:
    return [value] if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else []


class Collector:
    """Runs the checks on each answer and keeps every failure as a Violation (distinct ones only).

    `config` is the run's Schemathesis configuration (its dict form): a failure of a check it turns off for the
    case's operation is dropped, because Schemathesis 4.0's `Case.validate_response` runs every registered check
    whatever the configuration says (later releases run the enabled ones only)."""

    def __init__(
        self, target: Target, endpoint_id: str, seed_value: int, result: SuiteResult, config: Mapping[str, Any]
    ) -> None:
        self.target = target
        self.endpoint_id = endpoint_id
        self.seed = seed_value
        self.result = result
        self.config = config
        self._seen: set[tuple[str, str]] = set()

    def call_kwargs(self, timeout: float) -> dict[str, Any]:
        return {"base_url": self.target.base_url, "headers": self.target.headers(), "verify": self.target.verify,
                "timeout": timeout}  # fmt: skip

    def exercise(
        self, case: Case[Any], phase: str, timeout: float, *, fal_only: bool = False
    ) -> schemathesis.Response | None:
        """Send `case`, check the answer (`fal_only`: with fal's rules only, for a case the kit made itself rather
        than generated); a transport error is recorded as an error of the run."""
        try:
            response = self.call(case, timeout, phase)
        except Exception as exc:  # a transport error (or a case Schemathesis cannot send): the run could not decide
            self.result.errors.append(f"{self.endpoint_id} {case.method} {case.formatted_path}: {exc!r}")
            return None
        self.validate(case, response, phase, timeout, fal_only=fal_only)
        return response

    def call(self, case: Case[Any], timeout: float, phase: str = "stateful") -> schemathesis.Response:
        self.result.cases += 1
        self.result.phases[phase] = self.result.phases.get(phase, 0) + 1
        if checks.fal_operation(case) == "streamStatus":
            return read_stream(case, self.target, timeout)
        return case.call(**self.call_kwargs(timeout))

    def validate(
        self, case: Case[Any], response: schemathesis.Response, phase: str, timeout: float, *, fal_only: bool = False
    ) -> None:
        """Run every enabled check on `response`; checks that send requests of their own use the same target."""
        only = [getattr(checks, name) for name in checks.FAL_CHECKS] if fal_only else None
        try:
            case.validate_response(response, checks=only, transport_kwargs=self.call_kwargs(timeout))
        except AssertionError as failure:
            self._keep(failure, case, response, phase)
        except BaseException as group:  # Schemathesis' FailureGroup: a BaseExceptionGroup of its failures
            failures = getattr(group, "exceptions", None)
            if not failures or not all(isinstance(failure, AssertionError) for failure in failures):
                raise
            for each in failures:
                self._keep(each, case, response, phase)

    def _keep(self, failure: BaseException, case: Case[Any], response: schemathesis.Response, phase: str) -> None:
        rule = rule_of(failure)
        if rule in disabled_checks(self.config, case.operation.definition.raw.get("operationId")):
            return
        if rule == "unsupported_method" and response.status_code == 404 and "{" in case.operation.path:
            # As Schemathesis does from its later 4.x releases (4.0 does not): a path parameter the phase made up
            # names no resource, and routing answers 404 before it looks at the method.
            return
        title = str(getattr(failure, "title", "") or "")
        message = str(getattr(failure, "message", "") or failure)
        if title.startswith("Custom check failed"):
            title = ""
        text = f"{title}: {message}".strip(": ").strip()
        key = (rule, text)
        if key in self._seen:
            return
        self._seen.add(key)
        self.result.violations.append(
            Violation(
                rule=rule,
                message=text,
                suite=SUITE,
                endpoint=self.endpoint_id,
                request=_curl(case, response),
                response=show_answer(response.status_code, response.headers, response.content),
                reproduce=f"Schemathesis {phase} phase, --seed {self.seed}",
            )
        )


def rule_of(failure: BaseException) -> str:
    """The rule a Schemathesis failure reports: fal's rule for the kit's checks, else Schemathesis' check name."""
    exception = getattr(failure, "exception", None)
    if isinstance(exception, checks.RuleBroken):
        return exception.rule
    if isinstance(failure, checks.RuleBroken):
        return failure.rule
    named = getattr(type(failure), "checks", None)
    if isinstance(named, tuple) and named and isinstance(named[0], str):
        return named[0]
    title = str(getattr(failure, "title", ""))
    if "`" in title:  # "Custom check failed: `name`"
        return title.split("`")[1]
    return FAILURE_CHECKS.get(type(failure).__name__, type(failure).__name__)


def read_stream(case: Case[Any], target: Target, timeout: float) -> schemathesis.Response:
    """Send a status-stream case and read at most MAX_STREAM_EVENTS events or STREAM_SECONDS seconds.

    An answer the kit stopped reading carries the kit's marker header (`checks.CUT_SHORT_HEADER`), so
    `sse_ends_at_completed` does not mistake it for a stream the server closed.
    """
    kwargs = case.as_transport_kwargs(base_url=target.base_url, headers=target.headers())
    method, url = str(kwargs["method"]), str(kwargs["url"])
    headers = {str(k): str(v) for k, v in (kwargs.get("headers") or {}).items()}
    params = kwargs.get("params") or {}
    started = time.monotonic()
    body = bytearray()
    cut_short = False
    verify = checks.ssl_verify(target.verify)
    client = httpx.Client(verify=verify, timeout=httpx.Timeout(timeout, read=STREAM_SECONDS))
    with client, client.stream(method, url, headers=headers, params=params) as answer:
        try:
            for chunk in answer.iter_raw():
                body.extend(chunk)
                enough = len(parse_events(bytes(body))) >= MAX_STREAM_EVENTS
                if answer.status_code == 200 and (enough or time.monotonic() - started > STREAM_SECONDS):
                    cut_short = True
                    break
        except httpx.ReadTimeout:
            cut_short = True
        status_code, reason = answer.status_code, answer.reason_phrase
        answer_headers: dict[str, list[str]] = {}
        for name, value in answer.headers.multi_items():
            answer_headers.setdefault(name.lower(), []).append(value)
    if cut_short:
        answer_headers[checks.CUT_SHORT_HEADER] = ["1"]
    prepared = requests.Request(method, url, headers=headers, params=params).prepare()
    return schemathesis.Response(
        status_code=status_code,
        headers=answer_headers,
        content=bytes(body),
        request=prepared,
        elapsed=time.monotonic() - started,
        verify=bool(target.verify),
        message=reason,
    )


def _curl(case: Case[Any], response: schemathesis.Response) -> str:
    with contextlib.suppress(Exception):
        return str(case.as_curl_command(headers=dict(response.request.headers)))
    return f"{case.method} {case.formatted_path}"


def show_answer(status_code: int, headers: Mapping[str, list[str]], content: bytes, limit: int = 400) -> str:
    """An answer as one readable line: `HTTP 404 {"status": "NOT_FOUND"}` (JSON and text shown, else its size)."""
    content_type = (headers.get("content-type") or [""])[0]
    if content_type.startswith(("application/json", "text/")):
        text = content.decode("utf-8", errors="replace")
    else:
        text = f"<{len(content)} bytes of {content_type or 'unknown type'}>"
    if content_type.startswith("application/json"):
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), ensure_ascii=False)
    text = text if len(text) <= limit else text[:limit] + "…"
    return f"HTTP {status_code} {text}"
