"""The fal contract kit: does an endpoint (this emulator, real fal, a reseller) honour fal's queue contract
for the Veo models?

    from fal_emulator.contracts import KitOptions, run_contracts
    report = run_contracts(KitOptions(base_url="https://queue.fal.run", key=key))   # nothing generated
    assert report.ok, report.summary()

Command line: `fal-emulator contracts run --help`. In pytest: `fal_emulator.contracts.pytest_plugin`.
"""

from __future__ import annotations

from fal_emulator.contracts.report import Report, SuiteResult, Violation
from fal_emulator.contracts.rules import RULES
from fal_emulator.contracts.runner import SUITES, KitOptions, KitUsageError, run_contracts

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
