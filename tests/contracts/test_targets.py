"""The kit passes against a healthy emulator: in-process, and over real HTTPS against `fal-emulator serve`
with the command a user types."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from fal_emulator.contracts import cli
from fal_emulator.testing import EmulatorProcess
from tests.contracts.conftest import SEED

FAL_EMULATOR = str(Path(sys.executable).parent / "fal-emulator")


def test_the_kit_passes_against_the_emulator_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "contracts.xml"
    status = cli.main(["run", "--profile", "ci", "--seed", str(SEED), "--junit-xml", str(junit), "--quiet"])
    summary = capsys.readouterr().out
    assert status == 0, summary
    assert "in-process" in summary
    assert summary.rstrip().splitlines()[-1].endswith("PASSED")
    root = ElementTree.parse(junit).getroot()
    assert [suite.get("name") for suite in root] == ["openapi", "lifecycle", "media"]
    assert root.get("failures") == "0"
    assert len(root.find("testsuite").findall("testcase")) == 18 + 1  # type: ignore[union-attr]


def test_the_kit_passes_over_https_against_a_running_fal_emulator_serve(tmp_path: Path) -> None:
    # `fal-emulator serve --time-scale 20`: the default timing, twenty times faster.
    with EmulatorProcess(tmp_path / "state", extra_args=("--time-scale", "20")) as emulator:
        listening = emulator.listening
        assert listening is not None
        command = [FAL_EMULATOR, "contracts", "run", "--base-url", listening.https_url, "--profile", "ci"]
        env = {**os.environ, "SSL_CERT_FILE": listening.bundle}  # what `eval "$(fal-emulator env)"` exports
        result = subprocess.run([*command, "--seed", str(SEED)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{listening.https_url} (emulator)" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].endswith("PASSED")
