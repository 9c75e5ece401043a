"""How fast the dashboard (`/_emulator/ui`) answers and paints as stored requests pile up.

    .venv/bin/python benchmarks/dashboard.py                   # 0, 1,000 and 10,000 stored requests, every store
    .venv/bin/python benchmarks/dashboard.py --quick           # 0 and 10,000
    .venv/bin/python benchmarks/dashboard.py --stores sqlite   # one store

For each store and each number of stored requests, a child process builds the emulator, stores the requests
through the service (what a submit route calls: 1 in 10 fails with `content_policy_violation`, 1 in 100 stays
queued), and serves it with uvicorn on a free loopback port; the Redis store gets a database of the run's own
`redis-server` (a free loopback port, no persistence; left out with a note when it is not installed). This
process then measures, against it:

- server time of the page (`GET /_emulator/ui`), the live list fragment, the control plane's page of rows
  (`/_emulator/requests?limit=50`) and totals: the median of 15 requests each, in milliseconds;
- first contentful paint of the page in Debian's Chromium (Playwright), the median of 5 fresh loads;

and prints them with their ratio to the same store with no request stored (the page's fixed cost), measured
in the same run. Chromium is skipped with a note when Playwright or `chromium` is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from perf import procs

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "a lego chef", "image_url": "https://example.com/chef.png", "duration": "8s"}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# Milliseconds from navigation to the first contentful paint, once the browser has recorded it.
FIRST_PAINT = """() => new Promise((resolve) => new PerformanceObserver((list, observer) => {
  const [entry] = list.getEntriesByName('first-contentful-paint');
  if (entry) { observer.disconnect(); resolve(entry.startTime); }
}).observe({type: 'paint', buffered: true}))"""
STORES = ("memory", "sqlite", "redis")
PATHS = {
    "page": "/_emulator/ui",
    "list fragment": "/_emulator/ui/requests",
    "rows (JSON, 50)": "/_emulator/requests?limit=50",
    "totals (JSON)": "/_emulator/totals",
}


def serve(stored: int, store: str, redis_url: str) -> None:
    """The child: store `stored` requests, then serve until killed; prints `ready PORT`."""
    import uvicorn

    from fal_emulator.http.app import create_app
    from fal_emulator.server import bind
    from fal_emulator.settings import Settings
    from fal_emulator.submission import SubmitOptions

    state_dir = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    redis = {"redis_url": redis_url} if store == "redis" else {}
    settings = Settings(state_dir=state_dir, policy="instant", seed=1, store=store, **redis)  # type: ignore[arg-type]
    app = create_app(settings)
    emulator = app.state.emulator
    body = json.dumps(BODY).encode()
    with emulator.store.transaction():
        for index in range(stored):
            scenario = "manual" if index % 100 == 0 else "content_policy_violation" if index % 10 == 0 else None
            emulator.submit(ENDPOINT, body, "http://127.0.0.1", SubmitOptions(scenario=scenario))
    listener = bind("127.0.0.1", 0)
    print(f"ready {listener.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[listener])


@contextmanager
def child(stored: int, store: str, redis_url: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(stored), store, redis_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the child is ready (or exits)
        if not line.startswith("ready "):
            raise RuntimeError(f"the server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def server_times(base: str) -> dict[str, float]:
    times: dict[str, float] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, path in PATHS.items():
            client.get(path).raise_for_status()  # warm
            samples = []
            for _ in range(15):
                started = time.perf_counter()
                client.get(path).raise_for_status()
                samples.append((time.perf_counter() - started) * 1000)
            times[name] = statistics.median(samples)
    return times


def first_paints(base: str, browser: Any) -> float:
    samples = []
    for _ in range(5):
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        page.goto(f"{base}/_emulator/ui")
        samples.append(page.evaluate(FIRST_PAINT))
        context.close()
    return float(statistics.median(samples))


@contextmanager
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("note: Playwright is not installed: no first-paint figures", file=sys.stderr)
        yield None
        return
    executable = shutil.which("chromium")
    if executable is None:
        print("note: chromium is not on PATH: no first-paint figures", file=sys.stderr)
        yield None
        return
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0 and 10,000 stored requests only")
    parser.add_argument("--stores", default=",".join(STORES), help="stores to measure (default: %(default)s)")
    parser.add_argument("--serve", nargs=3, metavar=("STORED", "STORE", "REDIS_URL"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve:
        serve(int(options.serve[0]), options.serve[1], options.serve[2])
        return 0
    counts = [0, 10_000] if options.quick else [0, 1_000, 10_000]
    stores = [store for store in options.stores.split(",") if store]
    unknown = set(stores) - set(STORES)
    if unknown:
        parser.error(f"unknown store(s) {', '.join(sorted(unknown))}; use {', '.join(STORES)}")
    rows = []
    with (
        chromium() as browser,
        tempfile.TemporaryDirectory(prefix="dashboard-bench-") as work,
        contextlib.ExitStack() as services,
    ):
        databases: procs.RedisDatabases | None = None
        if "redis" in stores:
            server = procs.redis_server(Path(work) / "redis.log")
            if server is None:
                print("note: redis-server is not installed: no Redis figures", file=sys.stderr)
                stores.remove("redis")
            else:
                databases = procs.RedisDatabases(services.enter_context(server).start().base_url)
        for store in stores:
            base_line: dict[str, float] = {}
            for stored in counts:
                redis_url = databases.fresh() if databases is not None and store == "redis" else "-"
                with child(stored, store, redis_url) as base:
                    figures = server_times(base)
                    if browser is not None:
                        figures["first contentful paint"] = first_paints(base, browser)
                if stored == 0:
                    base_line = figures
                rows.append((store, stored, figures, base_line))
    names = list(rows[0][2])
    print("| store | stored requests | " + " | ".join(f"{name}, ms" for name in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for store, stored, figures, base_line in rows:
        cells = [f"{figures[name]:.0f} ({figures[name] / base_line[name]:.1f}×)" for name in names]
        print(f"| {store} | {stored:,} | " + " | ".join(cells) + " |")
    print("\n(×: the ratio to the same store with no request stored; first paint budget: 1,000 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
