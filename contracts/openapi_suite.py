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

Status streams are read by the kit (`collector.read_stream`): at most `MAX_STREAM_EVENTS` events or `STREAM_SECONDS`
seconds, so a stream that never closes cannot hang a run; the answer is then handed to the same checks.

This module, `collector.py`, `coverage.py` and `checks.py` are the only ones that import Schemathesis; they use only
its public API (`schemathesis.openapi`, `Config`, `Case`, `Response`, `check`, `GenerationMode`,
`as_state_machine`), which has held since Schemathesis 4.0 (`scripts/test-schemathesis` runs the kit's tests on the
oldest release the pin allows).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import Case, GenerationMode

from fal_emulator.catalog import Endpoint
from fal_emulator.contracts import checks
from fal_emulator.contracts.collector import SUITE, Collector
from fal_emulator.contracts.coverage import run_coverage_phase
from fal_emulator.contracts.profiles import COVERAGE_PROFILES, Profile
from fal_emulator.contracts.report import SuiteResult
from fal_emulator.contracts.target import Target

# Operations that generate (and on real fal bill) a video, or that only an emulator serves.
GENERATING_OPERATIONS = frozenset({"submit", "downloadFile"})
# (generation mode, an operation's parameters and body) for which Hypothesis found no case at all: some Schemathesis
# releases cannot make an invalid value for some parameters (4.0: the `logs` query flag), and each search costs
# about 1,000 draws; every endpoint's status operation has the same parameters, so it is searched once.
_UNSATISFIABLE: set[tuple[str, str]] = set()


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
