"""The Schemathesis suite: every phase (examples, coverage, fuzzing, stateful) over each endpoint's document.

Schemathesis generates the requests from `openapi/` (the same documents the emulator serves from), walks
the submit -> status / stream / result / cancel -> download links in its stateful phase, and runs all of
its default checks (with `negative_data_rejection` expecting fal's 422) plus fal's own rules
(`fal_emulator.contracts.checks`). Against a remote target (real fal, a reseller) it never submits: only the
operations on request ids it makes up (unknown ids, 404) run, so nothing is generated or billed.

This module is the only one that touches Schemathesis' engine (`schemathesis.engine`, v4.32).
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Mapping
from typing import Any

import schemathesis
from schemathesis.engine import events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder

import fal_emulator.contracts.checks  # noqa: F401 - registers fal's checks with Schemathesis
from fal_emulator.catalog import Endpoint
from fal_emulator.contracts.profiles import Profile
from fal_emulator.contracts.report import SuiteResult, Violation
from fal_emulator.contracts.target import Target

SUITE = "openapi"
# The operations whose answer depends on the request's state rather than on the input's validity.
STATEFUL_OPERATIONS = ["status", "streamStatus", "result", "cancel"]
# Schemathesis checks each status event's shape; the lifecycle machine checks how a stream ends. So a stream is
# read for at most 3 events (IN_QUEUE, IN_PROGRESS, COMPLETED) or STREAM_SECONDS, whichever comes first.
MAX_STREAM_EVENTS = 3
STREAM_SECONDS = 1.0


def schemathesis_config(target: Target, profile: Profile, seed: int) -> dict[str, Any]:
    """The Schemathesis configuration (the dict form of `schemathesis.toml`) for `target`."""
    remote = not target.is_emulator
    operations: list[dict[str, Any]] = [
        {"include-operation-id": "streamStatus", "request-timeout": STREAM_SECONDS},
        {
            "include-operation-id": STATEFUL_OPERATIONS,
            "checks": {
                # A well-formed id of a request that is still running, was cancelled or failed gets these.
                "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "404", "499", "5xx"]},
            },
        },
    ]
    if remote:
        # Submitting generates (and bills) a video; the media host is the emulator's own.
        operations.append({"include-operation-id": ["submit", "downloadFile"], "enabled": False})
    return {
        "seed": seed,
        "base-url": target.base_url,
        "headers": target.headers(),
        "tls-verify": target.verify,
        "request-timeout": profile.request_timeout,
        "max-stream-events": MAX_STREAM_EVENTS,
        "workers": 1,
        "generation": {"max-examples": profile.max_examples, "database": "none"},
        "phases": {
            "coverage": {"unexpected-methods": [] if remote else ["GET", "PUT", "POST", "DELETE", "PATCH"]},
            "stateful": {
                "enabled": not remote,
                "max-steps": max(profile.stateful_steps, 2),
                "generation": {"max-examples": profile.stateful_examples},
            },
        },
        "checks": {
            "negative_data_rejection": {"expected-statuses": ["401", "404", "422"]},
            # Sending undeclared methods to real fal's queue paths could start a job.
            "unsupported_method": {"enabled": not remote},
        },
        "operations": operations,
    }


def run_openapi_suite(endpoints: list[Endpoint], target: Target, profile: Profile, seed: int) -> SuiteResult:
    """Run Schemathesis over each endpoint's document against `target`; one SuiteResult for all of them."""
    result = SuiteResult(SUITE)
    started = time.monotonic()
    config = schemathesis.Config.from_dict(schemathesis_config(target, profile, seed))
    for endpoint in endpoints:
        schema = schemathesis.openapi.from_dict(copy.deepcopy(dict(endpoint.document)), config=config)
        for event in from_schema(schema).execute():
            _collect(event, endpoint.endpoint_id, seed, result)
    if not target.is_emulator:
        result.skipped.append("submit and media operations (remote target: they would generate video)")
    result.seconds = time.monotonic() - started
    return result


def _collect(event: events.EngineEvent, endpoint_id: str, seed: int, result: SuiteResult) -> None:
    if isinstance(event, events.ScenarioFinished):
        result.cases += len(event.recorder.cases)
        result.violations.extend(_violations(event.recorder, endpoint_id, seed, event.phase.value))
    elif isinstance(event, events.NonFatalError):
        result.errors.append(f"{endpoint_id} {event.label}: {event.info.title}: {_first_line(str(event.info))}")
    elif isinstance(event, events.FatalError):
        result.errors.append(f"{endpoint_id}: {event.exception!r}")


def _violations(recorder: ScenarioRecorder, endpoint_id: str, seed: int, phase: str) -> list[Violation]:
    found = []
    for case_id, checks in recorder.checks.items():
        for check in checks:
            info = check.failure_info
            if info is None:
                continue
            failure = info.failure
            interaction = recorder.interactions.get(failure.case_id or case_id)
            answer = interaction.response if interaction else None
            found.append(
                Violation(
                    rule=check.name,
                    message=f"{failure.title}: {failure.message}".strip(),
                    suite=SUITE,
                    endpoint=endpoint_id,
                    request=info.code_sample,
                    response="" if answer is None else _show_answer(answer.status_code, answer.headers, answer.content),
                    reproduce=f"Schemathesis {phase} phase, --seed {seed}",
                )
            )
    return found


def _show_answer(status_code: int, headers: Mapping[str, list[str]], content: bytes, limit: int = 400) -> str:
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


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
