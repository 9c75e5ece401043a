"""What a contract run found: violations, per-suite tallies, and the readable summary.

    report = run_contracts(options)
    report.ok                 # False when any suite found a violation or could not run
    print(report.summary())   # one block per violation: rule, endpoint, the failing request, how to reproduce

A `Violation` always names its `rule`: a Schemathesis check name (`status_code_conformance`, …) or one of
the kit's own rules (`queue_position_only_in_queue`, `sse_ends_at_completed`, `media_dimensions`, …;
`fal_emulator.contracts.rules.RULES` lists them with one line each).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Violation:
    """One broken rule.

    `suite` is where it was found (`openapi`, `lifecycle`, `media`, `probes`); `endpoint` the endpoint id;
    `request` the failing request (a curl command or a `METHOD url` line); `reproduce` how to replay it
    (the seed and the minimal steps, when the suite has them).
    """

    rule: str
    message: str
    suite: str
    endpoint: str = ""
    request: str = ""
    response: str = ""
    reproduce: str = ""

    def render(self) -> str:
        lines = [f"[{self.rule}] {self.endpoint or '-'} ({self.suite})", *_indent(self.message)]
        if self.request:
            lines += ["  request:", *_indent(self.request, 4)]
        if self.response:
            lines += ["  response:", *_indent(self.response, 4)]
        if self.reproduce:
            lines += ["  reproduce:", *_indent(self.reproduce, 4)]
        return "\n".join(lines)


@dataclass
class SuiteResult:
    """One suite's tally: `cases` is the number of HTTP requests it generated and checked; `phases` splits them
    by phase where the suite has phases (Schemathesis' `examples`, `fuzzing`, `stateful`, `coverage`)."""

    name: str
    cases: int = 0
    seconds: float = 0.0
    violations: list[Violation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # breaks of inferred rules (`rules.INFERRED`): not failures
    phases: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations and not self.errors


@dataclass
class Report:
    """The whole run: the target, the seed that reproduces it, and each suite's result."""

    target: str
    seed: int
    profile: str
    endpoints: list[str] = field(default_factory=list)
    suites: list[SuiteResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(suite.ok for suite in self.suites)

    @property
    def violations(self) -> list[Violation]:
        return [violation for suite in self.suites for violation in suite.violations]

    @property
    def rules_broken(self) -> set[str]:
        return {violation.rule for violation in self.violations}

    @property
    def cases(self) -> int:
        return sum(suite.cases for suite in self.suites)

    @property
    def seconds(self) -> float:
        return sum(suite.seconds for suite in self.suites)

    def suite(self, name: str) -> SuiteResult | None:
        return next((suite for suite in self.suites if suite.name == name), None)

    def summary(self, *, limit: int = 30) -> str:
        """A readable summary: notes, each violation (at most `limit`), the tallies, and the seed."""
        lines = [f"fal contract kit: {self.target} (profile {self.profile}, seed {self.seed})"]
        lines += [f"note: {note}" for note in self.notes]
        violations = _distinct(self.violations)
        for violation in violations[:limit]:
            lines += ["", violation.render()]
        if len(violations) > limit:
            lines += ["", f"... and {len(violations) - limit} more violations"]
        lines.append("")
        for suite in self.suites:
            state = "ok" if suite.ok else f"{len(_distinct(suite.violations))} violation(s)"
            line = f"{suite.name:<10} {suite.cases:>6} cases {suite.seconds:>7.1f} s  {state}"
            lines.append(line)
            if suite.phases:
                lines.append("           requests by phase: " + ", ".join(f"{n} {c}" for n, c in suite.phases.items()))
            lines += [f"           skipped: {reason}" for reason in suite.skipped]
            lines += [f"           warning: {warning}" for warning in suite.warnings]
            lines += [f"           error: {error}" for error in suite.errors]
        verdict = "PASSED" if self.ok else f"FAILED: {', '.join(sorted(self.rules_broken)) or 'errors'}"
        lines.append(f"{self.cases} cases in {self.seconds:.1f} s: {verdict}")
        if not self.ok:
            lines.append(f"reproduce with: --seed {self.seed} --profile {self.profile} (plus the same target options)")
        return "\n".join(lines)


def _distinct(violations: Iterable[Violation]) -> list[Violation]:
    """Violations without repeats of the same rule, endpoint and message (shrinking finds one bug many times)."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for violation in violations:
        key = (violation.rule, violation.endpoint, violation.message)
        if key not in seen:
            seen.add(key)
            unique.append(violation)
    return unique


def _indent(text: str, width: int = 2) -> list[str]:
    return [" " * width + line for line in text.strip("\n").splitlines()]
