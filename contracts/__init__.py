"""The fal contract kit: does an endpoint (this emulator, real fal, a reseller) honour fal's queue contract
for the Veo models?

    from contracts import KitOptions, run_contracts
    report = run_contracts(KitOptions(base_url="https://queue.fal.run", key=key))   # nothing generated
    assert report.ok, report.summary()

Command line: `fal-emulator contracts run --help`. In pytest: `contracts.pytest_plugin`.
"""

from __future__ import annotations

from contracts.report import Report, SuiteResult, Violation
from contracts.rules import RULES
from contracts.runner import SUITES, KitOptions, KitUsageError, run_contracts

__all__ = [
    "RULES",
    "SUITES",
    "KitOptions",
    "KitUsageError",
    "Report",
    "SuiteResult",
    "Violation",
    "run_contracts",
]
