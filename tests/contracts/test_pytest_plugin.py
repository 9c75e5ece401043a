"""A team runs the kit inside its own pytest suite (contracts.pytest_plugin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fal_emulator.contracts as contracts

TEAM_TEST = """
from tests.contracts.variants import variants


def test_our_endpoint_honours_fals_contract(fal_contracts):
    report = fal_contracts(endpoints=("fal-ai/veo3.1/fast",), suites=("lifecycle",))
    assert report.ok


def test_a_broken_endpoint_fails_with_the_kits_summary(fal_contracts):
    fal_contracts(endpoints=("fal-ai/veo3.1/fast",), suites=("lifecycle",),
                  wrap=variants()["running_answers_200"].wrap)
"""


def test_the_fal_contracts_fixture_passes_and_fails_tests(tmp_path: Path) -> None:
    (tmp_path / "test_team.py").write_text(TEAM_TEST)
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "pytest", "-p", "fal_emulator.contracts.pytest_plugin", "-q",
               "-p", "no:cacheprovider",
               "--fal-contracts-seed", "5", "--rootdir", str(tmp_path), str(tmp_path / "test_team.py")]  # fmt: skip
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
    assert "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    assert "[status_code_by_state]" in result.stdout
    assert "reproduce with: --seed 5 --profile ci" in result.stdout


def test_the_public_names_are_sorted_and_importable() -> None:
    assert contracts.__all__ == sorted(contracts.__all__, key=lambda name: (not name.isupper(), name))
    for name in contracts.__all__:
        assert getattr(contracts, name) is not None
