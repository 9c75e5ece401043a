"""The kit inside a team's own pytest suite.

    # conftest.py (the top-level one), or: pytest -p fal_emulator.contracts.pytest_plugin
    pytest_plugins = ["fal_emulator.contracts.pytest_plugin"]

    # test_fal_contract.py
    def test_our_fal_endpoint_honours_the_contracts(fal_contracts):
        fal_contracts(endpoints=("fal-ai/veo3.1/fast",))   # fails the test with the kit's summary

`fal_contracts(**options)` takes `fal_emulator.contracts.KitOptions` fields and returns the Report when every rule held.
Unless a test passes them, the target and profile come from `--fal-contracts-base-url URL` (default: the
emulator in-process), `--fal-contracts-key`, `--fal-contracts-profile` (default `ci`) and
`--fal-contracts-seed` (or `--fal-contracts-cassette FILE`: a recording, checked offline). This module imports
the kit only when the fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fal_emulator.contracts.report import Report


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fal-contracts", "fal contract kit")
    group.addoption(
        "--fal-contracts-base-url", default=None, help="target queue host (default: the emulator in-process)"
    )
    group.addoption("--fal-contracts-key", default=None, help="fal key or 'Bearer TOKEN' (default: $FAL_KEY)")
    group.addoption("--fal-contracts-profile", default="ci", help="ci, default or thorough (default: ci)")
    group.addoption("--fal-contracts-seed", type=int, default=None, help="seed to reproduce a run")
    group.addoption(
        "--fal-contracts-cassette", default=None, help="check a recording (`fal-emulator record`) offline instead"
    )


@pytest.fixture
def fal_contracts(request: pytest.FixtureRequest) -> Callable[..., Report]:
    """Run the kit with `KitOptions(**options)` (command-line defaults filled in); fail the test on a violation."""
    from fal_emulator.contracts.runner import KitOptions, run_contracts

    config = request.config
    defaults: dict[str, Any] = {
        "base_url": config.getoption("--fal-contracts-base-url"),
        "key": config.getoption("--fal-contracts-key"),
        "profile": config.getoption("--fal-contracts-profile"),
        "seed": config.getoption("--fal-contracts-seed"),
        "cassette": config.getoption("--fal-contracts-cassette"),
    }

    def run(**options: Any) -> Report:
        report = run_contracts(KitOptions(**{**defaults, **options}))
        if not report.ok:
            pytest.fail(report.summary(), pytrace=False)
        return report

    return run
