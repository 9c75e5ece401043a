"""The Schemathesis suite on its own (Schemathesis' public API): it passes a healthy emulator and names the rule a
broken one breaks. `scripts/test-schemathesis --smoke` runs this file against the oldest Schemathesis the pin allows
(CI does too); `./scripts/test` runs it against the newest."""

from __future__ import annotations

import pytest
import schemathesis

from fal_emulator.contracts import KitOptions, run_contracts
from tests.contracts.conftest import ENDPOINT, SEED
from tests.contracts.variants import variants

# Each breaks a rule that Schemathesis' checks or the kit's checks (checks.py) see on a single answer.
CAUGHT_BY_THE_SUITE = ["queue_position_missing", "wrong_error_shape", "missing_x_fal_request_id", "sse_skips_completed"]


def _openapi_only(**options: object) -> KitOptions:
    return KitOptions(endpoints=(ENDPOINT,), profile="ci", seed=SEED, suites=("openapi",), **options)  # type: ignore[arg-type]


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
