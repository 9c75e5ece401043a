"""The lifecycle suite: runs `LifecycleMachine` (`fal_emulator.contracts.lifecycle`) as a Hypothesis test against a
target, seeded so a run repeats, and turns the first broken rule into a `Violation` with the failing request and
the minimal program Hypothesis found (`state.submit(...)`, …).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis.errors import FlakyFailure
from hypothesis.stateful import run_state_machine_as_test

from fal_emulator.catalog import Endpoint
from fal_emulator.contracts.lifecycle import SUITE, LifecycleMachine
from fal_emulator.contracts.model import Broken, MachineContext
from fal_emulator.contracts.profiles import Profile
from fal_emulator.contracts.report import SuiteResult, Violation
from fal_emulator.contracts.spend import Budget
from fal_emulator.contracts.target import Target


def run_lifecycle_suite(
    endpoints: list[Endpoint], target: Target, profile: Profile, seed_value: int, *, budget: Budget | None = None
) -> tuple[SuiteResult, MachineContext]:
    """Run the machine `profile.machine_examples` times against `target` (seeded, so a run repeats).

    Against a remote target `budget` bounds what it may submit (no budget: only unknown-id rules run), and
    Hypothesis does not shrink, which would submit again.
    """
    result = SuiteResult(SUITE)
    started = time.monotonic()
    with target.client(timeout=profile.request_timeout) as client:
        context = MachineContext(target, endpoints, client, profile, frozen=target.kind == "in-process", budget=budget)
        shrink = target.is_emulator and profile.name != "ci"
        machine_settings = settings(
            profile.machine_settings(max_examples=profile.machine_examples if target.is_emulator else 1),
            phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.normal,  # so the failing program is attached to the error
        )

        def factory() -> LifecycleMachine:
            return LifecycleMachine(context)

        try:
            try:
                run_state_machine_as_test(seed(seed_value)(factory), settings=machine_settings)  # type: ignore[arg-type]
            except FlakyFailure as group:  # the replay did not fail the same way (the target keeps state)
                first = _first_broken(group.exceptions)
                if first is None:
                    raise
                first.__notes__ = [*getattr(group, "__notes__", []), *getattr(first, "__notes__", [])]
                result.skipped.append(f"the failing run of [{first.rule}] did not fail the same way when replayed")
                raise first from None
        except Broken as exc:
            program = _program(getattr(exc, "__notes__", []))
            result.violations.append(
                Violation(
                    exc.rule,
                    exc.message,
                    SUITE,
                    endpoint=context.current_endpoint,
                    request=exc.request,
                    response=exc.response,
                    reproduce=f"{program}\n--seed {seed_value}".strip(),
                )
            )
        except Exception as exc:  # a transport error, or a bug: the run could not decide
            notes = "\n".join(getattr(exc, "__notes__", []))
            result.errors.append(f"lifecycle machine: {exc!r}\n{notes}".strip())
    result.cases = context.requests_made
    result.seconds = time.monotonic() - started
    if budget is not None and not target.is_emulator:
        result.skipped.append(f"spent an estimated ${budget.spent:.2f} of ${budget.limit:.2f}")
    return result, context


def _first_broken(exceptions: Sequence[BaseException]) -> Broken | None:
    """The first Broken in a (nested) exception group's exceptions."""
    for exc in exceptions:
        if isinstance(exc, Broken):
            return exc
        if (found := _first_broken(getattr(exc, "exceptions", ()))) is not None:
            return found
    return None


def _program(notes: list[str]) -> str:
    """The steps of Hypothesis' failing program (its notes), without the invariant checks between them."""
    keep = ("state", "requests_", "Draw ")
    steps = [note for note in notes if note.startswith(keep) and "completed_requests_have_results" not in note]
    return "\n".join(steps)
