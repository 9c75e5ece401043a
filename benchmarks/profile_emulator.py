"""Where the emulator spends its CPU under load: py-spy samples `fal-emulator serve` while wrk drives one route.

    .venv/bin/pip install py-spy                # not a project dependency
    .venv/bin/python benchmarks/profile_emulator.py [--store memory|sqlite] [--what status,submit] [--live 0]

For each route it starts a fresh emulator (`--policy instant`), optionally fills it with `--live` queued
requests, warms it up, then records with `py-spy record` (1,000 samples/s) while wrk runs, and prints the
functions with the most samples, self (the frame on top) and inclusive (anywhere in the stack), and self
samples by package. Shares are of the samples in which the server was busy (py-spy leaves idle ones out).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perf import drivers, procs
from perf.drivers import AUTH, ENDPOINT, JSON_HEADERS, SEED_BYTES
from perf.load import Load, load_tool

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def where(file: str) -> str:
    """A package-level name for a source file as py-spy shows it: `emulator/http`, `starlette`, `asyncio`, ..."""
    parts = Path(file).parts
    for anchor in ("site-packages", "lib"):
        if anchor in parts:
            parts = parts[len(parts) - parts[::-1].index(anchor) :]
    for package in ("fal_emulator", "emulator"):  # the editable link tree, or the checkout
        if package in parts:
            parts = parts[parts.index(package) :]
            return "/".join(("fal_emulator", *parts[1:2])) if len(parts) > 2 else "fal_emulator"
    return parts[0] if len(parts) > 1 else Path(file).stem


def summarize(raw: Path, top: int) -> list[str]:
    """Tables of the top functions (self, inclusive) and of self samples per package, from py-spy's raw output."""
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    emulator_frames: set[str] = set()  # functions of the emulator's code, below the CLI's entry point
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [frame for frame in stack.split(";") if FRAME.match(frame)]
        names = []
        for frame in frames:
            match = FRAME.match(frame)
            assert match is not None
            names.append((f"{match['function']} ({where(match['file'])})", where(match["file"])))
        if not names:
            continue
        self_counts[names[-1][0]] += count
        packages[names[-1][1]] += count
        for name in {name for name, _ in names}:
            inclusive[name] += count
        emulator_frames.update(name for name, package in names[2:] if package.startswith("fal_emulator"))
    if not total:
        return ["no samples"]
    lines = [f"{total:,} busy samples", "", "| self % | function (package) |", "|---|---|"]
    lines += [f"| {n / total:.1%} | `{name}` |" for name, n in self_counts.most_common(top)]
    # Inclusive shares of the emulator's own functions (the framework's frames are ~100% by construction).
    own = [(name, n) for name, n in inclusive.most_common() if name in emulator_frames]
    lines += ["", "| inclusive % | emulator function (package) |", "|---|---|"]
    lines += [f"| {n / total:.1%} | `{name}` |" for name, n in own[:top]]
    lines += ["", "| self % | package |", "|---|---|"]
    lines += [f"| {n / total:.1%} | {name} |" for name, n in packages.most_common(top)]
    return lines


def profile(what: str, store: str, seconds: int, live: int, top: int, work: Path, spy: str) -> list[str]:
    tool = load_tool()
    args = () if store == "memory" else ("--store", store)
    with procs.Emulator(work / f"state-{what}-{store}", extra_args=args) as emulator:
        running = emulator.start()
        first = drivers.fill(running.base_url, live).last if live else drivers.submit_once(running.base_url)
        load = (
            Load(first["status_url"], headers=AUTH)
            if what == "status"
            else Load(f"{running.base_url}/{ENDPOINT}", "POST", JSON_HEADERS, SEED_BYTES)
        )
        tool.run(load, 2)  # warm-up
        raw = work / f"{what}-{store}.txt"
        command = [
            spy, "record", "--pid", str(running.pid), "--duration", str(seconds), "--rate", "1000",
            "--format", "raw", "--output", str(raw),
        ]  # fmt: skip
        spying = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)  # let py-spy attach before the load starts
        result = tool.run(load, seconds)
        try:
            _, err = spying.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            spying.kill()
            _, err = spying.communicate()
        if not raw.exists():
            return [f"py-spy wrote nothing: {err.strip()[-500:]}"]
        head = (
            f"### {what} · {store} · {live:,} live: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
            f"p99 {result.p99_ms:.2f} ms ({tool.name})"
        )
        return [head, "", *summarize(raw, top), ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="memory")
    parser.add_argument("--what", default="status,submit", help="routes to profile: status, submit")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--live", type=int, default=0, help="queued requests to fill in first (status polls the last)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    spy = py_spy()
    if spy is None:
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="fal-profile-") as tmp:
        for what in args.what.split(","):
            print("\n".join(profile(what.strip(), args.store, args.seconds, args.live, args.top, Path(tmp), spy)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
