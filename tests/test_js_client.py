"""The unmodified @fal-ai/client (JS, pinned in tests/js/package.json) against a real `fal-emulator serve`.

The node tests live in tests/js/*.test.mjs (node's built-in runner, `node --test`); this module installs
the locked packages with `npm ci`, starts one emulator (plain HTTP, `polls:1`: every request takes
exactly three status polls) and runs each node test file against it, one pytest test per file, with
the emulator's URL in EMULATOR_URL. Needs `node` (>= 20) and `npm`; without them the module is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fal_emulator.testing import EmulatorProcess

JS_DIR = Path(__file__).parent / "js"
NODE_TEST_FILES = sorted(path.name for path in JS_DIR.glob("*.test.mjs"))
NODE = shutil.which("node")
NPM = shutil.which("npm")
INSTALL_TIMEOUT = 300  # seconds; npm ci is about 1 s with a warm cache
FILE_TIMEOUT = 120  # seconds per node test file; each takes about 1 s
SUMMARY = re.compile(r"^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$", re.MULTILINE)
SKIPPED = re.compile(r"^\s*ok \d+ - (.*) # SKIP\b ?(.*)$", re.MULTILINE)


def _node_major() -> int | None:
    if NODE is None:
        return None
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.match(r"v(\d+)\.", version.strip())
    return int(match.group(1)) if match else None


NODE_MAJOR = _node_major()

pytestmark = [
    pytest.mark.skipif(NODE is None or NPM is None, reason="the JS client tests need node and npm on PATH"),
    pytest.mark.skipif(
        NODE_MAJOR is not None and NODE_MAJOR < 20, reason=f"the JS client tests need node >= 20, not {NODE_MAJOR}"
    ),
]


def _locked_packages(lockfile: Path) -> object:
    """The `packages` of a package-lock.json without the root entry; None when the file is missing or odd."""
    try:
        packages = json.loads(lockfile.read_text())["packages"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {name: entry for name, entry in packages.items() if name} if isinstance(packages, dict) else None


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """tests/js/node_modules as package-lock.json pins it: `npm ci`, unless npm's own record says it already is."""
    assert NPM is not None
    installed = _locked_packages(JS_DIR / "node_modules" / ".package-lock.json")
    if installed is None or installed != _locked_packages(JS_DIR / "package-lock.json"):
        command = [NPM, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=JS_DIR, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
        assert done.returncode == 0, f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return JS_DIR / "node_modules"


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Placeholder clips (the suite checks their names); rendering is tested through fal_client (test_render_*).
    with EmulatorProcess(
        tmp_path_factory.mktemp("js-state"), policy="polls:1", extra_args=("--render", "off")
    ) as process:
        assert process.listening is not None
        yield process.listening.http_url


def summary(output: str) -> dict[str, int]:
    """The counts node's TAP reporter ends with: {"tests": 10, "pass": 10, "fail": 0, ...}."""
    return {name: int(count) for name, count in SUMMARY.findall(output)}


def test_summary_parses_node_tap_output() -> None:
    output = "ok 1 - a\n1..1\n# tests 3\n# suites 1\n# pass 2\n# fail 0\n# cancelled 0\n# skipped 1\n# todo 0\n"
    assert summary(output) == {"tests": 3, "suites": 1, "pass": 2, "fail": 0, "cancelled": 0, "skipped": 1, "todo": 0}
    assert SKIPPED.findall("    ok 2 - cancel # SKIP emulator bug: x\nok 3 - b # SKIP\n") == [
        ("cancel", "emulator bug: x"),
        ("b", ""),
    ]


def test_node_test_files_are_found() -> None:
    assert {"middleware.test.mjs", "proxy.test.mjs", "errors.test.mjs", "retries.test.mjs"} <= set(NODE_TEST_FILES)


def test_client_is_pinned() -> None:
    """An exact version, so every run tests the same client (fal-protocol.md §6.2 was verified on 1.10.1)."""
    package = json.loads((JS_DIR / "package.json").read_text())
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    pinned = package["dependencies"]["@fal-ai/client"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), pinned
    assert lock["packages"]["node_modules/@fal-ai/client"]["version"] == pinned


@pytest.mark.parametrize("test_file", NODE_TEST_FILES)
def test_js_client(
    test_file: str, node_modules: Path, emulator_url: str, record_property: Callable[[str, object], None]
) -> None:
    assert NODE is not None and (node_modules / "@fal-ai" / "client").is_dir()
    env = {**os.environ, "EMULATOR_URL": emulator_url, "NO_COLOR": "1"}
    env.pop("FAL_KEY", None)  # the tests pass their own credentials
    command = [NODE, "--test", "--test-reporter=tap", test_file]
    try:
        done = subprocess.run(
            command, cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=FILE_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as timeout:
        partial = timeout.stdout.decode() if isinstance(timeout.stdout, bytes) else timeout.stdout or ""
        pytest.fail(f"node --test {test_file} still running after {FILE_TIMEOUT} s:\n{partial}")
    output = f"{done.stdout}\n{done.stderr}".strip()
    counts = summary(done.stdout)
    for name, count in counts.items():
        record_property(f"node_{name}", count)
    line = ", ".join(f"{count} {name}" for name, count in counts.items() if name != "suites")
    print(f"node --test {test_file}: {line}")
    for name, reason in SKIPPED.findall(done.stdout):
        print(f"  skipped: {name}" + (f" ({reason})" if reason else ""))
    assert done.returncode == 0, f"node --test {test_file} exited {done.returncode} ({line}):\n{output}"
    assert counts.get("tests", 0) > 0 and counts.get("fail") == 0 and counts.get("cancelled") == 0, output
