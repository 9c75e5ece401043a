"""The client release matrix: every fal_client and @fal-ai/client release a user may have, unmodified.

Each Python release runs in its own venv (`.matrix/py-VERSION/`, kept between runs) with only the variables
of `fal-emulator env --proxy`; each JS release in its own folder (`.matrix/js-VERSION/`) through both of the
README's recipes (requestMiddleware, proxyUrl). The drivers (tests/matrix/) run subscribe,
submit/status/result/cancel, run and upload against one real emulator (`polls:1`) and print one JSON line
per operation. `scripts/client-matrix` runs them all and prints the README's Markdown table; CI runs the
oldest and newest of each (tests/test_client_matrix.py).
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
OLD_PY = "builds `https://queue.{FAL_RUN_HOST}/`, so only the proxy reaches it; uploads via `rest.alpha.fal.ai`"
OLD_JS = "uploads via `rest.alpha.fal.ai`; proxyUrl is a string applied only in browsers: the driver defines `window`"
NOTES = {
    **{("python", version): OLD_PY for version in ("0.5.9", "0.7.0", "0.10.0")},
    ("python", "0.13.2"): "uploads via `rest.fal.ai` and `v3.fal.media`",
    ("python", "0.14.1"): "uploads via `rest.fal.ai` and `v3.fal.media`",
    ("python", "1.0.0"): "backup hosts `queue.falrun.com`, `falrun.com` are tunnelled too",
    ("python", "1.0.3"): "backup hosts `queue.falrun.com`, `falrun.com` are tunnelled too",
    **{("js", version): OLD_JS for version in ("1.0.4", "1.2.3", "1.5.0", "1.8.5")},
    ("js", "1.10.1"): 'uploads via `rest.fal.ai`; `proxyUrl: {url, when: "always"}`',
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
        cells = []
        for op in OPERATIONS:
            ok, detail = self.results.get(op, (False, "did not run"))
            cells.append("✅" if ok else f"❌ {detail}")
        kind = "python" if self.client == "fal-client" else "js"
        note = NOTES.get((kind, self.version), "")
        return f"| `{self.client}` {self.version} | {self.recipe} | " + " | ".join(cells) + f" | {note} |"


def table(cells: list[Cell]) -> str:
    header = "| client | recipe | " + " | ".join(OPERATIONS.values()) + " | notes |"
    rule = "|---|---|" + "---|" * len(OPERATIONS) + "---|"
    return "\n".join([header, rule, *(cell.row() for cell in cells)])


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


def python_venv(version: str) -> Path:
    """`.matrix/py-VERSION/bin/python`, with fal-client==VERSION and Pillow (made once; pip from this venv)."""
    folder = CACHE / f"py-{version}"
    python, stamp = folder / "bin" / "python", folder / ".installed"
    if stamp.exists():
        return python
    shutil.rmtree(folder, ignore_errors=True)
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(folder)])
    if made.returncode:
        raise Unavailable(f"python -m venv failed: {made.stderr.strip()[-300:]}")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--disable-pip-version-check"]
    done = _run([*pip, f"fal-client=={version}", "pillow"], timeout=INSTALL_TIMEOUT)
    if done.returncode:
        raise Unavailable(f"pip could not install fal-client=={version}: {done.stderr.strip()[-300:]}")
    stamp.touch()
    return python


def js_folder(version: str) -> Path:
    """`.matrix/js-VERSION/` with @fal-ai/client@VERSION installed (made once) and the driver copied in."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Unavailable("the JS cells need node (>= 20) and npm on PATH")
    folder = CACHE / f"js-{version}"
    stamp = folder / ".installed"
    if not stamp.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        package = {"private": True, "type": "module", "dependencies": {"@fal-ai/client": version}}
        (folder / "package.json").write_text(json.dumps(package, indent=2) + "\n")
        command = [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
        done = _run(command, cwd=folder, timeout=INSTALL_TIMEOUT)
        if done.returncode:
            raise Unavailable(f"npm could not install @fal-ai/client@{version}: {done.stderr.strip()[-300:]}")
        stamp.touch()
    shutil.copyfile(DRIVERS / "js_driver.mjs", folder / "driver.mjs")
    return folder


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


def main() -> int:
    import tempfile

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
