"""Schemathesis' coverage phase (boundary values, each enum value, missing and wrongly typed fields, unexpected
methods), through Schemathesis' pytest integration: the one part of its public Python API that runs the phase.

Schemathesis builds the phase's cases only where it builds whole tests: its CLI's engine and its pytest plugin
(`@schema.parametrize()` with `phases.coverage` in the schema's `Config`, documented since 4.0). `as_strategy`
gives the fuzzing phase only, and the coverage generator itself (`schemathesis.generation.coverage`,
`BaseSchema.iter_coverage_cases` from 4.18) is not in the documented API.

So the kit writes one test function per endpoint with `@schema.parametrize()` and runs them with `pytest.main()`
in a child process (`python -m fal_emulator.contracts.coverage SPEC ANSWER`), in a temporary directory of its own
(no conftest, no cache, no plugin but Schemathesis' own: `PYTEST_DISABLE_PLUGIN_AUTOLOAD`). The test body is the
kit's own (`Collector.exercise`: send the case, run every check, keep the violations), so the phase reports what
every other phase reports, under the kit's rules and Schemathesis' check names (`unsupported_method`, ...); the
child hands its tally back as JSON. A child, because a pytest session changes process-wide state that outlives
it (Hypothesis' pytest plugin marks the process as running under pytest, which changed later Schemathesis 4.0
runs of the kit), and so a team's own pytest session (`fal_contracts`) never has a session inside it. A child
that fails is an error of the run, with its exit status and last lines of output: never a silent skip.

Against a remote target (real fal, a reseller) the phase sends no unexpected method and nothing to the operations
that generate video (`GENERATING_OPERATIONS`): the configuration asks for none, and `sendable` drops any case
Schemathesis builds anyway (4.0 reads an empty `unexpected-methods` list as its defaults).

    run_coverage_phase(endpoints, target, profile, seed, result)   # adds its cases, violations and errors
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fal_emulator.catalog import Endpoint
from fal_emulator.contracts.profiles import Profile
from fal_emulator.contracts.report import SuiteResult, Violation
from fal_emulator.contracts.target import Target

# Methods the coverage phase sends to each path besides its own (Schemathesis' `unexpected-methods`).
UNEXPECTED_METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH"]
MODULE = "test_fal_contracts_coverage"
PHASE = "coverage"
CHILD_TIMEOUT = 3600.0  # seconds for the whole phase, every endpoint
OUTPUT_LINES = 8  # the child's last output lines shown when it fails
AUTHORIZATION_VARIABLE = "FAL_CONTRACTS_COVERAGE_AUTHORIZATION"  # the target's Authorization header, for the child
_PENDING: dict[str, Callable[..., None]] = {}  # in the child: the tests its pytest session collects, by name


def coverage_config(config: dict[str, Any], *, remote: bool) -> dict[str, Any]:
    """`config` (the dict form of `schemathesis.toml`) with only the coverage phase, valid and invalid cases.

    Against a remote target (real fal, a reseller) no unexpected method is asked for (one could start a job) and
    `unsupported_method` is off; the child also leaves out the operations that generate video (`sendable`)."""
    coverage: dict[str, Any] = {"enabled": True, "generation": {"mode": "all"}}
    coverage["unexpected-methods"] = [] if remote else UNEXPECTED_METHODS
    checks = {**config.get("checks", {}), "unsupported_method": {"enabled": not remote}}
    phases = {"examples": {"enabled": False}, "fuzzing": {"enabled": False}, "stateful": {"enabled": False}}
    # Schemathesis 4.0 builds the phase's cases in the run's generation modes (later releases read the phase's
    # own): with only the coverage phase enabled, "all" there changes nothing else.
    generation = {**config.get("generation", {}), "mode": "all"}
    return {**config, "generation": generation, "checks": checks, "phases": {**phases, "coverage": coverage}}


def sendable(case: Any, *, remote: bool) -> bool:
    """Whether the kit sends `case`: against a remote target never an unexpected method nor an operation that
    generates video, whatever Schemathesis built (4.0 reads an empty `unexpected-methods` as its defaults)."""
    if not remote:
        return True
    from fal_emulator.contracts.openapi_suite import GENERATING_OPERATIONS

    operation = case.operation
    if str(case.method).upper() != str(operation.method).upper():
        return False
    return operation.definition.raw.get("operationId") not in GENERATING_OPERATIONS


def run_coverage_phase(
    endpoints: Sequence[Endpoint], target: Target, profile: Profile, seed: int, result: SuiteResult
) -> None:
    """Run the phase over `endpoints` against `target` in a child process and add what it found to `result`:
    its requests (`cases`, and `phases["coverage"]`), its violations (named by Schemathesis' check names or the
    kit's rules; those not already in `result`) and its errors. A child that fails (exits without an answer,
    exceeds CHILD_TIMEOUT, or its pytest session cannot run) is an error of the run, with its last output lines:
    the phase is never skipped silently."""
    spec = {
        "target": {name: getattr(target, name) for name in ("kind", "base_url", "run_base_url", "verify")},
        "endpoints": [endpoint.endpoint_id for endpoint in endpoints],
        "profile": dataclasses.asdict(profile),
        "seed": seed,
    }
    # The key goes to the child in its environment, never into a file. The child imports `fal_emulator` from where
    # this process did; only the plugins it names are loaded.
    env = {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}
    env[AUTHORIZATION_VARIABLE] = target.authorization
    env["PYTHONPATH"] = os.pathsep.join(entry for entry in sys.path if entry)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    result.phases.setdefault(PHASE, 0)
    with tempfile.TemporaryDirectory(prefix="fal-contracts-coverage-") as work:
        spec_file, answer_file = Path(work) / "spec.json", Path(work) / "answer.json"
        spec_file.write_text(json.dumps(spec))
        command = [sys.executable, "-W", "ignore", "-m", __name__, str(spec_file), str(answer_file)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            result.errors.append(f"Schemathesis coverage phase: no answer within {CHILD_TIMEOUT:.0f} s")
            return
        output = f"{done.stdout}\n{done.stderr}".strip().splitlines()
        try:
            answer = json.loads(answer_file.read_text())
        except (OSError, ValueError):
            tail = " | ".join(line.strip() for line in output[-OUTPUT_LINES:]) or "no output"
            result.errors.append(f"Schemathesis coverage phase: its process exited with {done.returncode}: {tail}")
            return
    result.cases += int(answer["cases"])
    result.phases[PHASE] += int(answer["cases"])
    result.errors += [str(error) for error in answer["errors"]]
    if answer["incomplete"]:
        tail = " | ".join(line.strip() for line in output[-OUTPUT_LINES:]) or "no output"
        result.errors.append(f"Schemathesis coverage phase: {answer['incomplete']}: {tail}")
    seen = {(violation.endpoint, violation.rule, violation.message) for violation in result.violations}
    for fields in answer["violations"]:
        violation = Violation(**fields)
        if (violation.endpoint, violation.rule, violation.message) not in seen:
            seen.add((violation.endpoint, violation.rule, violation.message))
            result.violations.append(violation)


# -- the child ----------------------------------------------------------------------------------------------


def _test(schema: Any, visit: Callable[[Any], Any]) -> Callable[..., None]:
    """The schema's test: every case goes to `visit` (Hypothesis quiet, without deadline or example database)."""
    from hypothesis import HealthCheck, Verbosity, settings

    @schema.parametrize()  # type: ignore[untyped-decorator]
    @settings(deadline=None, database=None, suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
              print_blob=False)  # fmt: skip
    def test(case: Any) -> None:
        visit(case)

    return test  # type: ignore[no-any-return]


class _Failures:
    """A pytest plugin that keeps what failed to run (Schemathesis could not build an operation's cases, or a
    case could not be checked), each as an error naming the endpoint and the operation."""

    def __init__(self, errors: list[str], endpoints: dict[str, str]) -> None:
        self.errors = errors
        self.endpoints = endpoints  # test function name -> endpoint id

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            name, _, operation = report.nodeid.split("::")[-1].partition("[")
            where = " ".join(filter(None, [self.endpoints.get(name, name), operation.rstrip("]")]))
            lines = str(report.longrepr).strip().splitlines()
            raised = [line[1:].strip() for line in lines if line.startswith("E ")][:3] or lines[-1:] or ["failed"]
            self.errors.append(f"Schemathesis coverage phase, {where}: {' '.join(raised)}")

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.errors.append(f"Schemathesis coverage phase: collection failed: {str(report.longrepr).strip()[-300:]}")


def run_in_child(spec: dict[str, Any]) -> tuple[SuiteResult, str]:
    """The phase as the child runs it: one `@schema.parametrize()` test per endpoint, one pytest session.
    Returns the tally and why the session did not complete ("" when it did)."""
    import pytest
    import schemathesis

    from fal_emulator.contracts import checks, coverage
    from fal_emulator.contracts.collector import SUITE, Collector
    from fal_emulator.contracts.documents import load_contracts
    from fal_emulator.contracts.openapi_suite import GENERATING_OPERATIONS, schemathesis_config

    target = Target(**spec["target"], authorization=os.environ[AUTHORIZATION_VARIABLE])
    profile = Profile(**spec["profile"])
    seed = int(spec["seed"])
    remote = not target.is_emulator
    result = SuiteResult(SUITE)
    options = coverage_config(schemathesis_config(target, profile, seed), remote=remote)
    config = schemathesis.Config.from_dict(options)
    checks.begin_run(target.verify)
    endpoints: dict[str, str] = {}
    for index, endpoint in enumerate(load_contracts(tuple(spec["endpoints"]))):
        schema: Any = schemathesis.openapi.from_dict(copy.deepcopy(dict(endpoint.document)), config=config)
        if remote:
            schema = schema.exclude(operation_id=sorted(GENERATING_OPERATIONS))
        collector = Collector(target, endpoint.endpoint_id, seed, result, options)
        exercise = functools.partial(collector.exercise, phase=PHASE, timeout=profile.request_timeout)

        def visit(case: Any, exercise: Callable[[Any], Any] = exercise) -> None:
            if sendable(case, remote=remote):
                exercise(case)

        name = f"test_coverage_{index}"
        coverage._PENDING[name] = _test(schema, visit)
        endpoints[name] = endpoint.endpoint_id
    with tempfile.TemporaryDirectory(prefix="fal-contracts-coverage-") as work:
        (Path(work) / "pytest.ini").write_text("[pytest]\n")
        module = Path(work) / f"{MODULE}.py"
        module.write_text(f"from {coverage.__name__} import _PENDING\n\nglobals().update(_PENDING)\n")
        arguments = [str(module), "-q", "-s", "--assert=plain", "--noconftest", "-p", "schemathesis.pytest.plugin",
                     "-p", "no:cacheprovider", "--rootdir", work]  # fmt: skip
        before = len(result.errors)
        code = pytest.main(arguments, plugins=[_Failures(result.errors, endpoints)])
    incomplete = ""
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or (code and len(result.errors) == before):
        incomplete = f"pytest exited with {code!r}"
    return result, incomplete


def main(argv: list[str]) -> int:
    """`python -m fal_emulator.contracts.coverage SPEC ANSWER`: run the phase, write the tally to ANSWER (JSON:
    cases, errors, violations, incomplete)."""
    spec_file, answer_file = argv
    result, incomplete = run_in_child(json.loads(Path(spec_file).read_text()))
    answer = {"cases": result.cases, "errors": result.errors, "incomplete": incomplete,
              "violations": [dataclasses.asdict(violation) for violation in result.violations]}  # fmt: skip
    Path(answer_file).write_text(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
