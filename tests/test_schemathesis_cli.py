"""The stock Schemathesis CLI (`st run`: every phase, positive and negative data, every check) against a live
`fal-emulator serve`, over every OpenAPI document: fal's 18 in `openapi/`, the control plane and storage
(`/_emulator/openapi.json`) and the synchronous host (`/_emulator/openapi-sync.json`), once per store. It fails
on any 5xx and on any failed check.

The only configuration is `tests/schemathesis/schemathesis.toml`: the answers that depend on earlier state
(cancel's 400, result's 400/499, the clock's year-9999 limit) are added to what `positive_data_acceptance`
expects; nothing is switched off. Each store runs with its own serve options (`RUNS`): a mode that answers
negative data differently (validation at the runner: a bad input is accepted, then completes with 422) gets
its own row there, with the `negative_data_rejection` statuses it expects in a config file of its own.

Bounded: `--max-examples 3` (about 10,000 requests in all); the two stores run side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fal_emulator.paths import OPENAPI_DIR
from fal_emulator.testing import EmulatorProcess

CONFIG = Path(__file__).resolve().parent / "schemathesis" / "schemathesis.toml"
KEY, TOKEN = "st-key", "st-token"
MAX_EXAMPLES, SEED = 3, 1
# store -> extra `fal-emulator serve` options for that run.
RUNS: dict[str, tuple[str, ...]] = {
    "memory": ("--store", "memory"),
    "sqlite": ("--store", "sqlite"),
}


@dataclass(frozen=True)
class Run:
    document: str
    requests: int
    server_errors: int
    exit_code: int
    output: str


def st_command() -> list[str]:
    script = Path(sys.executable).with_name("st")
    if not script.exists():
        pytest.skip(f"needs the Schemathesis CLI (`st`) beside {sys.executable}: install the test extra")
    return [str(script), "--config-file", str(CONFIG), "run"]


def run_document(location: str, base_url: str, work: Path) -> Run:
    name = location.rsplit("/", 1)[-1]
    har = work / f"{name}.har"
    with httpx.Client(base_url=base_url, headers={"X-Fal-Emulator-Token": TOKEN}, trust_env=False) as control:
        assert control.post("/_emulator/reset").status_code == 200  # each document starts from a clean state
    command = [
        *st_command(), location, "--url", base_url, "-H", f"Authorization: Key {KEY}",
        "-H", f"X-Fal-Emulator-Token: {TOKEN}", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--request-timeout", "20", "--generation-database", "none", "--report", "har", "--report-har-path", str(har),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=600)
    entries = json.loads(har.read_text())["log"]["entries"] if har.exists() else []
    har.unlink(missing_ok=True)
    errors = sum(1 for entry in entries if entry["response"]["status"] >= 500)
    return Run(name, len(entries), errors, done.returncode, done.stdout[-6000:] + done.stderr[-2000:])


def run_store(store: str, work: Path) -> list[Run]:
    work.mkdir()
    args = (*RUNS[store], "--key", KEY, "--control-token", TOKEN)
    with EmulatorProcess(work / "state", policy="instant", extra_args=args) as server:
        assert server.listening is not None
        base = server.listening.http_url
        locations = [str(path) for path in sorted(OPENAPI_DIR.glob("*.yaml"))]
        locations += [f"{base}/_emulator/openapi.json", f"{base}/_emulator/openapi-sync.json"]
        return [run_document(location, base, work) for location in locations]


def test_stock_schemathesis_finds_no_server_error_over_every_document(tmp_path: Path) -> None:
    st_command()
    with ThreadPoolExecutor(len(RUNS)) as pool:
        futures = {store: pool.submit(run_store, store, tmp_path / store) for store in RUNS}
        results = {store: future.result() for store, future in futures.items()}
    for store, runs in results.items():
        total, errors = sum(run.requests for run in runs), sum(run.server_errors for run in runs)
        print(f"{store}: {len(runs)} documents, {total} requests, {errors} answers 5xx")  # -s shows the figures
    failed = [(store, run) for store, runs in results.items() for run in runs if run.exit_code or run.server_errors]
    assert not failed, "\n\n".join(f"[{store}] {run.document}: exit {run.exit_code}, {run.server_errors} 5xx\n"
                                   f"{run.output}" for store, run in failed)  # fmt: skip
    assert all(len(runs) == 20 and all(run.requests > 50 for run in runs) for runs in results.values())
