"""scripts/_venv.sh, which scripts/serve and scripts/test source: it installs once per change and shows progress,
pip's errors and nothing else. Run against a stand-in `.venv/bin/python` whose pip prints what a case needs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASH = shutil.which("bash")

# The stand-in: `pip install --upgrade pip` succeeds quietly; the editable install prints no progress line on
# stdout, emits setuptools' editable-mode warning as Python code would, and fails when STUB_FAIL is set.
STUB = """#!/bin/sh
case "$*" in *"--upgrade pip"*) exit 0 ;; esac
python3 -c 'import warnings; warnings.warn("Editable installation.\\n!!\\n\\n  ****\\n  Strict editable installation \
performed using the auxiliary directory\\n  ****\\n\\n!!", UserWarning)'
if [ -n "$STUB_FAIL" ]; then echo "ERROR: No matching distribution found for starlette>=0.40" >&2; exit 1; fi
exit 0
"""


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "_venv.sh", tmp_path / "scripts" / "_venv.sh")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "fal-emulator"\n')
    for folder in ("emulator", "contracts", "openapi", "fixtures"):
        (tmp_path / folder).mkdir()
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(STUB)
    python.chmod(0o755)
    return tmp_path


def source_venv(clone: Path, **env: str) -> subprocess.CompletedProcess[str]:
    assert BASH is not None
    command = f'source {clone}/scripts/_venv.sh ""; echo "sourced: $(pwd)"'
    environment = {"PATH": os.environ["PATH"], "HOME": str(clone), **env}
    return subprocess.run([BASH, "-c", command], env=environment, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(BASH is None, reason="needs bash, which the scripts are written for")
def test_an_install_whose_pip_prints_no_progress_line_still_finishes_and_stamps(clone: Path) -> None:
    """Before: under pipefail, grep's exit 1 (no line matched) ended the script silently, with no stamp."""
    done = source_venv(clone)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sourced: {clone}"
    assert len(list((clone / ".venv").glob(".installed-*"))) == 1
    assert "Strict editable installation" not in done.stderr  # the expected warning box is not shown
    assert (
        done.stderr.strip() == f"fal-emulator: installing into {clone}/.venv (the first time takes a minute or two)..."
    )


@pytest.mark.skipif(BASH is None, reason="needs bash, which the scripts are written for")
def test_a_failed_install_shows_pips_error_exits_non_zero_and_writes_no_stamp(clone: Path) -> None:
    done = source_venv(clone, STUB_FAIL="1")
    assert done.returncode != 0
    assert "sourced:" not in done.stdout
    assert "ERROR: No matching distribution found for starlette>=0.40" in done.stderr
    assert list((clone / ".venv").glob(".installed-*")) == []
