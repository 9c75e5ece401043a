"""The Schemathesis suite on its own (Schemathesis' public API): it passes a healthy emulator and names the rule a
broken one breaks. `scripts/test-schemathesis --smoke` runs this file against the oldest Schemathesis the pin allows
(CI does too); `./scripts/test` runs it against the newest."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import schemathesis
from starlette.types import ASGIApp, Receive, Scope, Send

from fal_emulator.contracts import KitOptions, coverage, run_contracts
from fal_emulator.contracts.documents import load_contracts
from fal_emulator.contracts.loopback import LoopbackServer
from fal_emulator.contracts.profiles import PROFILES
from fal_emulator.contracts.report import SuiteResult
from fal_emulator.contracts.target import Target
from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from tests.contracts.conftest import ENDPOINT, SEED, Generations, as_real_fal
from tests.contracts.variants import coverage_variants, variants

# Each breaks a rule that Schemathesis' checks or the kit's checks (checks.py) see on a single answer.
CAUGHT_BY_THE_SUITE = ["queue_position_missing", "wrong_error_shape", "missing_x_fal_request_id", "sse_skips_completed"]


def _openapi_only(**options: object) -> KitOptions:
    chosen: dict[str, Any] = {"profile": "ci", **options}
    return KitOptions(endpoints=(ENDPOINT,), seed=SEED, suites=("openapi",), **chosen)


def test_the_suite_passes_a_healthy_emulator() -> None:
    report = run_contracts(_openapi_only())
    suite = report.suite("openapi")
    assert suite is not None
    assert report.ok, report.summary()
    assert suite.cases >= 20, f"Schemathesis {schemathesis.__version__} sent only {suite.cases} requests"


@pytest.mark.parametrize("name", CAUGHT_BY_THE_SUITE)
def test_the_suite_names_the_rule_a_broken_emulator_breaks(name: str) -> None:
    variant = variants()[name]
    report = run_contracts(_openapi_only(wrap=variant.wrap))
    assert variant.rules & report.rules_broken, (
        f"Schemathesis {schemathesis.__version__}: {name} should break {sorted(variant.rules)}; "
        f"the suite reported {sorted(report.rules_broken)}\n{report.summary()}"
    )
    assert "(openapi)" in report.summary()


def test_the_coverage_phase_runs_in_default_and_thorough_only() -> None:
    assert [name for name, profile in PROFILES.items() if profile.coverage] == ["default", "thorough"]


def test_the_default_profile_runs_the_coverage_phase_which_alone_sends_unexpected_methods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Schemathesis' coverage phase, through its pytest integration (in a child process): a healthy emulator
    passes it, and an emulator that answers PATCH and DELETE with 200 fails it, named by Schemathesis'
    `unsupported_method` check and reproduced by the phase; profile `ci` does not run the phase, so the same
    emulator passes it. (The default profile's other budgets are cut to one case, to keep the test quick.)"""
    quick = dataclasses.replace(PROFILES["default"], max_examples=1, stateful_examples=1, stateful_steps=2)
    monkeypatch.setitem(PROFILES, "default", quick)
    healthy = run_contracts(_openapi_only(profile="default"))
    assert healthy.ok, healthy.summary()
    sent = healthy.suite("openapi").phases.get("coverage", 0)  # type: ignore[union-attr]
    assert sent >= 100, f"Schemathesis {schemathesis.__version__}: the coverage phase sent {sent} requests"
    assert f"coverage {sent}" in healthy.summary()

    variant = coverage_variants()["unexpected_methods_accepted"]
    broken = run_contracts(_openapi_only(profile="default", wrap=variant.wrap))
    assert variant.rules <= broken.rules_broken, broken.summary()
    named = [violation for violation in broken.violations if violation.rule in variant.rules]
    assert {violation.reproduce for violation in named} == {f"Schemathesis coverage phase, --seed {SEED}"}
    assert any(violation.request.startswith("curl -X PATCH") for violation in named), broken.summary()

    unchecked = run_contracts(_openapi_only(profile="ci", wrap=variant.wrap))
    assert unchecked.ok, unchecked.summary()
    assert "coverage" not in unchecked.suite("openapi").phases  # type: ignore[union-attr]
    assert "skipped: Schemathesis coverage phase (profile ci" in unchecked.summary()


def test_against_a_remote_target_the_coverage_phase_sends_no_unexpected_method_and_generates_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real fal bills video: against a remote target (a loopback stand-in for fal) the phase sends only the
    methods the documents declare, and nothing to submit or the emulator's own files route, on every Schemathesis
    4.x (4.0 reads an empty `unexpected-methods` list as its defaults: the kit filters the cases itself)."""
    monkeypatch.setitem(PROFILES, "default", dataclasses.replace(PROFILES["default"], max_examples=1))
    generations, sent = Generations(), set()

    def methods(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                sent.add((str(scope["method"]), str(scope["path"])))
            await app(scope, receive, send)

        return wrapped

    app = methods(as_real_fal(create_app(Settings(policy="polls:1", seed=SEED)), generations))
    with LoopbackServer(app) as base_url:
        report = run_contracts(_openapi_only(profile="default", base_url=base_url, key="fal-key"))
    assert report.ok, report.summary()
    assert report.suite("openapi").phases.get("coverage", 0) >= 20, report.summary()  # type: ignore[union-attr]
    assert generations.inputs == []
    assert not {method for method, _ in sent} & {"PATCH", "DELETE", "OPTIONS", "TRACE"}, sorted(sent)
    assert not [path for method, path in sent if method == "POST" or path.startswith("/files/")], sorted(sent)


def test_a_coverage_phase_that_cannot_run_is_an_error_of_the_run_with_its_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Never skipped silently: a child process that exits without its answer fails the run, with its exit status
    and its last lines of output."""
    monkeypatch.setattr(coverage, "__name__", "fal_emulator.contracts.no_such_module")
    target = Target("in-process", "http://127.0.0.1:9", "http://127.0.0.1:9/run", "Key fal-contracts", False)
    result = SuiteResult("openapi")
    coverage.run_coverage_phase(load_contracts((ENDPOINT,)), target, PROFILES["default"], SEED, result)
    assert not result.ok
    assert result.cases == 0 and result.phases == {"coverage": 0}
    [error] = result.errors
    assert error.startswith("Schemathesis coverage phase: its process exited with 1: "), error
    assert "No module named fal_emulator.contracts.no_such_module" in error


def test_a_target_whose_refused_inputs_never_complete_is_reported_once_not_waited_on_for_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A target left with a `manual` policy keeps every request IN_QUEUE: the kit follows the first refused
    input to its deadline, names the likely cause, and follows no more, so the run stays bounded."""
    from fal_emulator.contracts import checks

    monkeypatch.setattr(checks, "FOLLOW_SECONDS", 0.3)

    def manual(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["method"] == "POST":
                scope = {**scope, "headers": [*scope["headers"], (b"x-fal-emulator-scenario", b"manual")]}
            await app(scope, receive, send)

        return wrapped

    report = run_contracts(_openapi_only(wrap=manual))
    stalled = [v for v in report.violations if v.rule == "bad_input_refused_at_result"]
    assert len(stalled) == 1, report.summary()
    assert "manual" in stalled[0].message and "not followed" in stalled[0].message
