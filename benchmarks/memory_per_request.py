"""What one queued request costs in memory, in process: the emulator's ASGI app (memory store) filled with the seed
submit of `fal-ai/veo3/image-to-video` under scenario `manual` (it stays IN_QUEUE), as `run.py`'s curve fills a
server, with no server, socket or load generator.

    .venv/bin/python benchmarks/memory_per_request.py                  # RSS per request at 10,000 and 100,000
    .venv/bin/python benchmarks/memory_per_request.py --tracemalloc    # and the Python objects per request
    .venv/bin/python benchmarks/memory_per_request.py --levels 10000 --top 15   # and where they are allocated

First 11,000 submits fill the journal to its cap (as `run.py`'s warm-up does), then each level adds that many
requests: the figure is the growth of the process's VmRSS (bytes) over the requests added, and with
`--tracemalloc` the growth of the memory tracemalloc traces (Python objects: what the requests hold, without the
allocator's own slack). Each level runs in a new process. The budget (issue 12) is 1.5 KB (1,536 B) of RSS.
In `--top`, the journal's entries (replaced one for one at its cap) show as a + and a - site of the same size.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

from asgi_cost import Call, new_loop
from perf.drivers import AUTH, ENDPOINT, SEED_BYTES

from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings

WARM_UP = 11_000  # fills the journal (10,000 entries) so that its memory is in the starting point


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def fill(call: Call, count: int) -> None:
    for _ in range(count):
        await call.app(call.fresh_scope(), call.receive, call.send)
        if call.status != 200:
            raise SystemExit(f"submit answered {call.status}: {call.answer[:300]!r}")


def measure(count: int, traced: bool, top: int) -> None:
    """One level, in this process: prints the RSS bytes per request added, or with `traced` the traced bytes per
    request (tracemalloc's own records inflate RSS, so the two come from separate processes), then the `top`
    allocation sites."""
    loop = new_loop()
    with tempfile.TemporaryDirectory(prefix="fal-memory-") as tmp:
        app = create_app(Settings(state_dir=Path(tmp), policy="instant", seed=1))
        headers = {**AUTH, "content-type": "application/json", "x-fal-emulator-scenario": "manual"}
        call = Call(app, "POST", f"/{ENDPOINT}", headers, SEED_BYTES)
        if traced:
            tracemalloc.start(12 if top else 1)
        loop.run_until_complete(fill(call, WARM_UP))
        gc.collect()
        before = tracemalloc.get_traced_memory()[0] if traced else rss_bytes()
        snapshot = tracemalloc.take_snapshot() if traced and top else None
        loop.run_until_complete(fill(call, count))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] if traced else rss_bytes()
        print(f"{(after - before) / count:,.0f}", flush=True)
        if snapshot is not None:
            for stat in tracemalloc.take_snapshot().compare_to(snapshot, "traceback")[:top]:
                print(f"\n{stat.size_diff / count:+,.0f} B/request in {stat.count_diff / count:+.2f} blocks:")
                print("\n".join(line for line in stat.traceback.format(limit=6) if "site-packages" not in line))
    loop.close()


def run_level(level: int, traced: bool, top: int) -> tuple[str, str]:
    """A level measured in a new process: (its figure, what it printed after)."""
    command = [sys.executable, __file__, "--level", str(level), "--top", str(top)] + (
        ["--tracemalloc"] if traced else []
    )
    figure, _, rest = subprocess.run(command, check=True, capture_output=True, text=True).stdout.partition("\n")
    return figure, rest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="10000,100000", help="requests added, comma-separated")
    parser.add_argument("--tracemalloc", action="store_true", help="also Python objects per request (tracemalloc)")
    parser.add_argument("--top", type=int, default=0, help="the N sites that grew most (with --tracemalloc)")
    parser.add_argument("--level", type=int, help=argparse.SUPPRESS)  # one level, in this process
    args = parser.parse_args()
    traced = args.tracemalloc or bool(args.top)
    if args.level is not None:
        measure(args.level, traced, args.top)
        return 0
    print("| requests added | RSS bytes per request |" + (" traced bytes per request |" if traced else ""))
    print("|---|---|" + ("---|" if traced else ""))
    sites = []
    for level in (int(level) for level in args.levels.split(",")):
        cells = [f"{level:,}", run_level(level, False, 0)[0]]
        if traced:
            figure, top = run_level(level, True, args.top)
            cells.append(figure)
            sites.append(top)
        print(f"| {' | '.join(cells)} |", flush=True)
    print("".join(sites), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
