"""The client release matrix: every fal_client and @fal-ai/client release a user may have, unmodified.

Each Python release runs in its own venv (`.matrix/py-VERSION/`, kept between runs) with only the variables
of `fal-emulator env --proxy`; each JS release in its own folder (`.matrix/js-VERSION/`) through both of the
README's recipes (requestMiddleware, proxyUrl). The drivers (tests/matrix/) run subscribe,
submit/status/result/cancel, run and upload against one real emulator (`polls:1`) and print one JSON line
per operation. `scripts/client-matrix` installs and runs them all and prints the README's Markdown table; CI
runs the oldest and newest of each (`CI_CELLS`, tests/test_client_matrix.py), which `scripts/test` installs
first with `scripts/client-matrix --prepare`: the tests themselves reach no network, and skip naming that
command when a release is not prepared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fal_emulator.testing import EmulatorProcess

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".matrix"  # gitignored
DRIVERS = Path(__file__).resolve().parent / "matrix"
PYTHON_RELEASES = ("0.5.9", "0.7.0", "0.10.0", "0.13.2", "0.14.1", "1.0.0", "1.0.3")
JS_RELEASES = ("1.0.4", "1.2.3", "1.5.0", "1.8.5", "1.10.1")
JS_RECIPES = ("middleware", "proxyUrl")
OPERATIONS = {"subscribe": "subscribe", "queue": "submit/status/result/cancel", "run": "run", "upload": "upload"}
HELD_ENDPOINT = "fal-ai/veo3/fast"  # the drivers' cancel target: kept IN_QUEUE
INSTALL_TIMEOUT = 300  # seconds
RUN_TIMEOUT = 120  # seconds per cell
CI_CELLS = (
    ("python", PYTHON_RELEASES[0], ""),
    ("python", PYTHON_RELEASES[-1], ""),
    *[("js", version, recipe) for version in (JS_RELEASES[0], JS_RELEASES[-1]) for recipe in JS_RECIPES],
)  # the oldest and newest of each client: what CI runs, and what `--prepare` installs
PREPARE = "scripts/client-matrix --prepare"
# Before 1.10 `proxyUrl` is a string that @fal-ai/client applies only in a browser (`typeof window`): the
# driver defines `window` to run it under node, so those cells hold for browser code only.
BROWSER_ONLY_PROXY = ("1.0.4", "1.2.3", "1.5.0", "1.8.5")
BROWSER_ONLY = "✅ (browser only)"
OLD_PY = "builds `https://queue.{FAL_RUN_HOST}/`, so only the proxy reaches it; uploads via `rest.alpha.fal.ai`"
OLD_JS = "uploads via `rest.alpha.fal.ai`"
OLD_JS_PROXY = (
    "uploads via `rest.alpha.fal.ai`; a string `proxyUrl` applies only in browsers (the driver defines `window`)"
)
NOTES = {
    **{("python", version, ""): OLD_PY for version in ("0.5.9", "0.7.0", "0.10.0")},
    ("python", "0.13.2", ""): "uploads via `rest.fal.ai` and `v3.fal.media`",
    ("python", "0.14.1", ""): "uploads via `rest.fal.ai` and `v3.fal.media`",
    ("python", "1.0.0", ""): "backup hosts `queue.falrun.com`, `falrun.com` are tunnelled too",
    ("python", "1.0.3", ""): "backup hosts `queue.falrun.com`, `falrun.com` are tunnelled too",
    **{("js", version, "middleware"): OLD_JS for version in BROWSER_ONLY_PROXY},
    **{("js", version, "proxyUrl"): OLD_JS_PROXY for version in BROWSER_ONLY_PROXY},
    ("js", "1.10.1", "middleware"): "uploads via `rest.fal.ai`",
    ("js", "1.10.1", "proxyUrl"): 'uploads via `rest.fal.ai`; `proxyUrl: {url, when: "always"}`',
}


class Unavailable(RuntimeError):
    """A cell cannot run on this machine (no node, no package index); the message says why."""


@dataclass
class Cell:
    client: str  # "fal-client" or "@fal-ai/client"
    version: str
    recipe: str
    results: dict[str, tuple[bool, str]] = field(default_factory=dict)
    log: str = ""  # the driver's stderr

    @property
    def ok(self) -> bool:
        return len(self.results) == len(OPERATIONS) and all(ok for ok, _ in self.results.values())

    def row(self) -> str:
        kind = "python" if self.client == "fal-client" else "js"
        passed = (
            BROWSER_ONLY if (kind, self.recipe) == ("js", "proxyUrl") and self.version in BROWSER_ONLY_PROXY else "✅"
        )
        cells = []
        for op in OPERATIONS:
            ok, detail = self.results.get(op, (False, "did not run"))
            cells.append(passed if ok else f"❌ {detail}")
        note = NOTES.get((kind, self.version, "" if kind == "python" else self.recipe), "")
        return f"| `{self.client}` {self.version} | {self.recipe} | " + " | ".join(cells) + f" | {note} |"


def table(cells: list[Cell]) -> str:
    header = "| client | recipe | " + " | ".join(OPERATIONS.values()) + " | notes |"
    rule = "|---|---|" + "---|" * len(OPERATIONS) + "---|"
    return "\n".join([header, rule, *(cell.row() for cell in cells)])


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


def _python_folder(version: str) -> Path:
    return CACHE / f"py-{version}"


def _js_folder(version: str) -> Path:
    return CACHE / f"js-{version}"


def prepare_python(version: str) -> None:
    """Make `.matrix/py-VERSION/` with fal-client==VERSION and Pillow, once (pip from this venv; needs PyPI).
    Raises Unavailable when pip cannot install it."""
    folder = _python_folder(version)
    if (folder / ".installed").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(folder)])
    if made.returncode:
        raise Unavailable(f"python -m venv failed: {made.stderr.strip()[-300:]}")
    pip = [sys.executable, "-m", "pip", "--python", str(folder / "bin" / "python"), "install", "--quiet",
           "--disable-pip-version-check"]  # fmt: skip
    done = _run([*pip, f"fal-client=={version}", "pillow"], timeout=INSTALL_TIMEOUT)
    if done.returncode:
        raise Unavailable(f"pip could not install fal-client=={version}: {done.stderr.strip()[-300:]}")
    (folder / ".installed").touch()


def prepare_js(version: str) -> None:
    """Make `.matrix/js-VERSION/` with @fal-ai/client@VERSION installed, once (needs the npm registry).
    Raises Unavailable without node and npm, or when npm cannot install it."""
    npm = _node_and_npm()[1]
    folder = _js_folder(version)
    if (folder / ".installed").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    package = {"private": True, "type": "module", "dependencies": {"@fal-ai/client": version}}
    (folder / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    command = [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    done = _run(command, cwd=folder, timeout=INSTALL_TIMEOUT)
    if done.returncode:
        raise Unavailable(f"npm could not install @fal-ai/client@{version}: {done.stderr.strip()[-300:]}")
    (folder / ".installed").touch()


def _node_and_npm() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Unavailable("the JS cells need node (>= 20) and npm on PATH")
    return node, npm


def python_venv(version: str) -> Path:
    """`.matrix/py-VERSION/bin/python` as `prepare_python` made it. Raises Unavailable, naming the command that
    prepares it, when it is not there: a test never installs anything."""
    folder = _python_folder(version)
    if not (folder / ".installed").exists():
        raise Unavailable(f"fal-client {version} is not installed in {folder}: run `{PREPARE}` (needs PyPI)")
    return folder / "bin" / "python"


def js_folder(version: str) -> Path:
    """`.matrix/js-VERSION/` as `prepare_js` made it, with the driver copied in. Raises Unavailable, naming the
    command that prepares it, when it is not there (or without node)."""
    _node_and_npm()
    folder = _js_folder(version)
    if not (folder / ".installed").exists():
        raise Unavailable(
            f"@fal-ai/client {version} is not installed in {folder}: run `{PREPARE}` (needs npm's registry)"
        )
    shutil.copyfile(DRIVERS / "js_driver.mjs", folder / "driver.mjs")
    return folder


def prepare(cells: tuple[tuple[str, str, str], ...]) -> list[str]:
    """Install the releases of `cells` into `.matrix/`; returns why each one that could not be failed."""
    problems = []
    for kind, version in dict.fromkeys((kind, version) for kind, version, _ in cells):
        try:
            if kind == "python":
                prepare_python(version)
            else:
                prepare_js(version)
        except Unavailable as exc:
            problems.append(str(exc))
    return problems


def _parse(cell: Cell, done: subprocess.CompletedProcess[str]) -> Cell:
    for line in done.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("op") == "version":
            assert entry["detail"] == cell.version, f"{cell.client} {entry['detail']} installed, not {cell.version}"
        elif entry.get("op") in OPERATIONS:
            cell.results[entry["op"]] = (bool(entry["ok"]), str(entry["detail"]))
    if not cell.ok:
        cell.results.setdefault("subscribe", (False, f"driver exited {done.returncode}: {done.stderr[-300:]}"))
    cell.log = done.stderr
    return cell


def run_python(version: str, server: EmulatorProcess) -> Cell:
    """One fal_client release in proxy mode: only `env --proxy`'s variables (and PATH, HOME) are set."""
    python = python_venv(version)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"), **server.proxy_env()}
    command = [str(python), str(DRIVERS / "py_driver.py")]
    return _parse(Cell("fal-client", version, "`env --proxy`"), _run(command, env=env, timeout=RUN_TIMEOUT))


def run_js(version: str, recipe: str, server: EmulatorProcess) -> Cell:
    folder = js_folder(version)
    assert server.listening is not None
    env = {**os.environ, "EMULATOR_URL": server.listening.http_url, "NO_COLOR": "1"}
    command = [shutil.which("node") or "node", "driver.mjs", recipe]
    return _parse(Cell("@fal-ai/client", version, recipe), _run(command, cwd=folder, env=env, timeout=RUN_TIMEOUT))


def matrix_server(state_dir: Path) -> EmulatorProcess:
    """A started emulator for the drivers: every request takes one status poll per state; HELD stays queued;
    placeholder clips (the drivers check their names; rendering is tested through fal_client in test_render_*)."""
    server = EmulatorProcess(state_dir, policy="polls:1", extra_args=("--render", "off"))
    listening = server.start()
    with httpx.Client(base_url=listening.http_url, trust_env=False) as control:
        control.put("/_emulator/policy", json={"policy": "manual", "endpoint_id": HELD_ENDPOINT}).raise_for_status()
    return server


def all_cells(server: EmulatorProcess) -> Iterator[Cell]:
    for version in PYTHON_RELEASES:
        yield run_python(version, server)
    for version in JS_RELEASES:
        for recipe in JS_RECIPES:
            yield run_js(version, recipe, server)


def main(argv: list[str] | None = None) -> int:
    """No arguments: install every release (once) and run them all, printing the table. `--prepare`: install
    only CI's cells and exit (what `scripts/test` runs before the tests; a release that cannot be installed is
    reported, and its test then skips saying so)."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="scripts/client-matrix", description=__doc__.split("\n")[0])
    parser.add_argument("--prepare", action="store_true", help="install CI's releases into .matrix/ and exit")
    args = parser.parse_args(argv)
    every = tuple(("python", version, "") for version in PYTHON_RELEASES) + tuple(
        ("js", version, recipe) for version in JS_RELEASES for recipe in JS_RECIPES
    )
    for problem in prepare(CI_CELLS if args.prepare else every):
        print(f"client-matrix: {problem}", file=sys.stderr)
    if args.prepare:
        return 0
    with tempfile.TemporaryDirectory(prefix="fal-emulator-matrix-") as state_dir:
        server = matrix_server(Path(state_dir))
        try:
            cells = []
            for cell in all_cells(server):
                print(f"{cell.client} {cell.version} ({cell.recipe}): {'ok' if cell.ok else 'FAILED'}", file=sys.stderr)
                if not cell.ok:
                    print(cell.log, file=sys.stderr)
                cells.append(cell)
        finally:
            server.stop()
    print(table(cells))
    return 0 if all(cell.ok for cell in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
