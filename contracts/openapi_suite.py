"""The Schemathesis suite, on Schemathesis' public Python API: each endpoint's document, its explicit examples,
generated valid and invalid requests, the stateful walk along the document's links, and (profiles `default` and
`thorough`) Schemathesis' coverage phase through its pytest integration (`fal_emulator.contracts.coverage`).

    schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_dict(...))
    operation.get_strategies_from_examples(), operation.as_strategy(GenerationMode.NEGATIVE)  # under @given
    case.call(...); case.validate_response(response)          # Schemathesis' checks + fal's (checks.py)
    schema.as_state_machine()                                 # submit -> status / stream / result / cancel

Every check Schemathesis enables by default runs (with `negative_data_rejection` expecting fal's 422, except at
submit: fal's queue takes any JSON body and the runner refuses a bad one at the result, which
`bad_input_refused_at_result` checks), plus fal's own rules (`fal_emulator.contracts.checks`). A failure is kept
and the run goes on, so one run reports every rule it saw broken. Against a remote target (real fal, a reseller)
nothing is submitted: only the operations on request ids it makes up (unknown ids, 404) run, so nothing is
generated or billed.

Status streams are read by the kit (`read_stream`): at most `MAX_STREAM_EVENTS` events or `STREAM_SECONDS`
seconds, so a stream that never closes cannot hang a run; the answer is then handed to the same checks.

This module, `coverage.py` and `checks.py` are the only ones that import Schemathesis; they use only its public API
(`schemathesis.openapi`, `Config`, `Case`, `Response`, `check`, `GenerationMode`, `as_state_machine`), which has
held since Schemathesis 4.0 (`scripts/test-schemathesis` runs the kit's tests on the oldest release the pin allows).
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import Case, GenerationMode

from fal_emulator.catalog import Endpoint
from fal_emulator.contracts import checks
from fal_emulator.contracts.coverage import run_coverage_phase
from fal_emulator.contracts.profiles import COVERAGE_PROFILES, Profile
from fal_emulator.contracts.report import SuiteResult, Violation
from fal_emulator.contracts.sse import parse_events
from fal_emulator.contracts.target import Target

SUITE = "openapi"
# Operations that generate (and on real fal bill) a video, or that only an emulator serves.
GENERATING_OPERATIONS = frozenset({"submit", "downloadFile"})
# Schemathesis checks each status event's shape; the lifecycle machine checks how a stream ends. So a stream is
# read for at most 3 events (IN_QUEUE, IN_PROGRESS, COMPLETED) or STREAM_SECONDS, whichever comes first.
MAX_STREAM_EVENTS = 3
STREAM_SECONDS = 1.0
# (generation mode, an operation's parameters and body) for which Hypothesis found no case at all: some Schemathesis
# releases cannot make an invalid value for some parameters (4.0: the `logs` query flag), and each search costs
# about 1,000 draws; every endpoint's status operation has the same parameters, so it is searched once.
_UNSATISFIABLE: set[tuple[str, str]] = set()
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


def schemathesis_config(target: Target, profile: Profile, seed_value: int) -> dict[str, Any]:
    """The Schemathesis configuration (the dict form of `schemathesis.toml`) for `target`."""
    return {
        "seed": seed_value,
        "base-url": target.base_url,
        "headers": target.headers(),
        "tls-verify": target.verify,
        "request-timeout": profile.request_timeout,
        # Stateful walks submit valid inputs (so requests run); negative cases come from the fuzzing step.
        "generation": {"mode": "positive", "max-examples": profile.max_examples, "database": "none"},
        "checks": {
            "negative_data_rejection": {"expected-statuses": ["401", "404", "422"]},
            # A well-formed id of a request that is still running, was cancelled or failed gets these.
            "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "404", "499", "5xx"]},
        },
        "operations": [
            # fal's queue takes any JSON body: a bad input is refused by the runner, at the result. So a submit is
            # not held to "negative data is rejected" (a 4xx at once); `bad_input_refused_at_result` judges every
            # submitted body with the endpoint's pydantic model (lax) and follows refused ones to their result.
            {"include-operation-id": "submit", "checks": {"negative_data_rejection": {"enabled": False}}},
            {
                # A request whose input the runner refused answers its 422 at the result.
                "include-operation-id": "result",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "404", "422", "499", "5xx"]}
                },
            },
        ],
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


def _operations(schema: Any, document: Mapping[str, Any]) -> Iterator[tuple[str, Any, bool, str]]:
    """(operationId, APIOperation, whether it can be sent invalid data, its inputs' shape: the parameters and body
    as JSON) for each operation of the document.

    Only a body or a query parameter can be invalid: a path parameter that is a free string (a request id,
    a file name) has no invalid value, and Hypothesis would search for one in vain.
    """
    for path, methods in document.get("paths", {}).items():
        for method, definition in methods.items():
            if isinstance(definition, dict) and "operationId" in definition:
                parameters = [*methods.get("parameters", []), *definition.get("parameters", [])]
                invalidable = "requestBody" in definition or any(p.get("in") == "query" for p in parameters)
                shape = json.dumps([parameters, definition.get("requestBody")], sort_keys=True)
                yield definition["operationId"], schema[path][method.upper()], invalidable, shape


def _quiet_settings(max_examples: int, **extra: Any) -> settings:
    return settings(
        max_examples=max(max_examples, 1),
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
        **extra,
    )


def _run_strategy(
    strategy: st.SearchStrategy[Case[Any]], count: int, seed_value: int, visit: Callable[[Case[Any]], Any]
) -> None:
    @seed(seed_value)
    @_quiet_settings(count)
    @given(case=strategy)
    def run(case: Case[Any]) -> None:
        visit(case)

    run()


def run_operation(
    operation: Any, collector: Collector, profile: Profile, seed_value: int, *, invalid: bool = True, shape: str = ""
) -> None:
    """The examples, then valid (and, when `invalid`, invalid) generated requests, for one operation."""
    t = profile.request_timeout
    for strategy in operation.get_strategies_from_examples():
        _run_strategy(strategy, 1, seed_value, lambda case: collector.exercise(case, "examples", t))
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if invalid else (GenerationMode.POSITIVE,):
        key = (mode.value, shape or f"{collector.endpoint_id} {operation.label}")
        if key in _UNSATISFIABLE:
            continue
        try:
            strategy = operation.as_strategy(generation_mode=mode)
        except Exception as exc:  # an operation Schemathesis cannot generate for in this mode
            collector.result.errors.append(f"{collector.endpoint_id} {operation.label} ({mode.value}): {exc!r}")
            continue
        try:
            _run_strategy(strategy, profile.max_examples, seed_value, lambda c: collector.exercise(c, "fuzzing", t))
        except Unsatisfiable:  # Schemathesis could make no case of this mode for the operation
            _UNSATISFIABLE.add(key)


# The operations submit links to, walked once in this order by `walk_links_once` (the stream first, while the
# request still runs).
LINKED_OPERATIONS = ("streamStatus", "status", "result", "cancel")


def walk_links_once(schema: Any, document: Mapping[str, Any], collector: Collector, profile: Profile) -> None:
    """Submit the document's example, then call each operation its links lead to, once, with the request id it
    answered: every link is walked and its answers checked, whatever the random walk (`run_stateful`) draws."""
    operations = {operation_id: operation for operation_id, operation, _, _ in _operations(schema, document)}
    submit = operations.get("submit")
    if submit is None:
        return
    example = submit.definition.raw.get("requestBody", {}).get("content", {}).get("application/json", {})
    case = submit.Case(body=example.get("example", {}), media_type="application/json")
    response = collector.exercise(case, "stateful", profile.request_timeout, fal_only=True)
    try:
        request_id = json.loads(response.content)["request_id"] if response is not None else None
    except (ValueError, KeyError, TypeError):
        request_id = None
    if not isinstance(request_id, str):
        return
    for operation_id in LINKED_OPERATIONS:
        operation = operations.get(operation_id)
        if operation is not None:
            query = {"logs": "1"} if operation_id in {"status", "streamStatus"} else None
            linked = operation.Case(path_parameters={"request_id": request_id}, query=query)
            collector.exercise(linked, "stateful", profile.request_timeout, fal_only=True)


def run_stateful(schema: Any, collector: Collector, profile: Profile, seed_value: int) -> None:
    """Schemathesis' state machine over the document's links: submit, then status, stream, result and cancel."""
    timeout = profile.request_timeout

    class FalLinks(schema.as_state_machine()):  # type: ignore[misc]
        def call(self, case: Case[Any], **kwargs: Any) -> schemathesis.Response:
            return collector.call(case, timeout)

        def validate_response(
            self, response: schemathesis.Response, case: Case[Any], additional_checks: Any = None, **kwargs: Any
        ) -> None:
            collector.validate(case, response, "stateful", timeout)

    machine_settings = _quiet_settings(profile.stateful_examples, stateful_step_count=max(profile.stateful_steps, 2))
    try:
        run_state_machine_as_test(seed(seed_value)(lambda: FalLinks()), settings=machine_settings)  # type: ignore[arg-type]
    except Exception as exc:  # a transport error, or a document Schemathesis cannot walk
        collector.result.errors.append(f"{collector.endpoint_id} stateful: {exc!r}")


def run_openapi_suite(endpoints: list[Endpoint], target: Target, profile: Profile, seed_value: int) -> SuiteResult:
    """Run Schemathesis over each endpoint's document against `target`; one SuiteResult for all of them."""
    result = SuiteResult(SUITE)
    started = time.monotonic()
    options = schemathesis_config(target, profile, seed_value)
    config = schemathesis.Config.from_dict(options)
    checks.begin_run(target.verify)
    for endpoint in endpoints:
        document = copy.deepcopy(dict(endpoint.document))
        schema = schemathesis.openapi.from_dict(document, config=config)
        collector = Collector(target, endpoint.endpoint_id, seed_value, result, options)
        for operation_id, operation, invalidable, shape in _operations(schema, document):
            if operation_id in GENERATING_OPERATIONS and not target.is_emulator:
                continue
            run_operation(operation, collector, profile, seed_value, invalid=invalidable, shape=shape)
        if target.is_emulator:
            walk_links_once(schema, document, collector, profile)
            run_stateful(schema, collector, profile, seed_value)
    if profile.coverage:
        run_coverage_phase(endpoints, target, profile, seed_value, result)
    else:
        result.skipped.append(f"Schemathesis coverage phase (profile {profile.name}; on in {COVERAGE_PROFILES})")
    if not target.is_emulator:
        result.skipped.append("submit, media and stateful operations (remote target: they would generate video)")
    result.seconds = time.monotonic() - started
    return result


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
