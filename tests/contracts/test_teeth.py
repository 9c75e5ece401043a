"""The kit has teeth: every deliberately broken emulator (`variants.py`) fails it, and the failure names the rule
that was broken."""

from __future__ import annotations

import pytest

from fal_emulator.contracts import KitOptions, run_contracts
from tests.contracts.conftest import ENDPOINT, SEED
from tests.contracts.variants import variants


def test_there_are_at_least_ten_broken_variants() -> None:
    assert len(variants()) >= 10


@pytest.mark.parametrize("name", sorted(variants()))
def test_the_kit_fails_a_broken_emulator_and_names_the_rule(name: str) -> None:
    variant = variants()[name]
    report = run_contracts(KitOptions(wrap=variant.wrap, endpoints=(ENDPOINT,), profile="ci", seed=SEED))
    summary = report.summary()
    named = variant.rules & report.rules_broken
    assert not report.ok
    assert named, f"{name} should break {sorted(variant.rules)}; the kit reported {sorted(report.rules_broken)}"
    assert any(f"[{rule}]" in summary for rule in named), summary
    assert f"seed {SEED}" in summary
