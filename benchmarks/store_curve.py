"""Queue operations with more and more live requests, per store, in-process (no HTTP): is every curve flat?

    .venv/bin/python benchmarks/store_curve.py                       # 10 ... 100,000 live, every store
    .venv/bin/python benchmarks/store_curve.py --levels 10,1000 --stores sqlite

For each store it fills the queue with `manual` requests (they stay IN_QUEUE, in two apps, one in five
`low` priority) up to each level, then times, over `--samples` calls each: a status poll of the request
with the largest queue position, a submit (instant policy, so the live count stays), and a submit and
cancel of a queued request. It prints the p50 in microseconds and its ratio to the first level: the
issue's budget is status p50 at 100,000 live <= 1.25x that at 10. The Redis store uses a redis-server it
starts on a free loopback port (skipped with a note when none is installed).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from perf import procs

from fal_emulator.clock import VirtualClock
from fal_emulator.ids import IdSource
from fal_emulator.queue import Outcome, Policy, Queue, Store
from fal_emulator.sqlite_store import SqliteStore
from fal_emulator.store import MemoryStore

OUTPUT = Outcome.success({"video": {"url": "http://127.0.0.1/files/1280x720_8s_audio.mp4", "file_size": 1}})
APPS = ("fal-ai/veo3", "fal-ai/veo3.1")
MANUAL, INSTANT = Policy.parse("manual"), Policy.parse("instant")


@contextlib.contextmanager
def store_of(kind: str, work: Path, redis_url: str | None) -> Iterator[Store]:
    if kind == "sqlite":
        yield SqliteStore(work / "emulator.sqlite3")
    elif kind == "redis":
        from fal_emulator.redis_store import RedisStore

        assert redis_url is not None
        store = RedisStore(redis_url)
        store.reset()
        yield store
    else:
        yield MemoryStore()


def p50_us(samples: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def curve(queue: Queue, levels: list[int], samples: int) -> list[tuple[int, float, float, float, float]]:
    """(live, status p50, submit p50, submit+cancel p50, fill rate per s) per level."""
    rows, live, last = [], 0, ""
    for level in levels:
        started = time.perf_counter()
        for n in range(live, level):
            app = APPS[n % 2]
            priority = "low" if n % 5 == 4 else "normal"
            last = queue.submit(app, app, {"prompt": "p"}, OUTPUT, policy=MANUAL, priority=priority).request_id  # type: ignore[arg-type]
        fill = (level - live) / max(time.perf_counter() - started, 1e-9)
        live = level
        app = APPS[(level - 1) % 2]  # the app of the last request: the status route names it, as here
        status = p50_us(samples, lambda request_id=last, app_id=app: queue.status(request_id, app_id=app_id))

        def submit_instant() -> None:
            queue.submit(APPS[0], APPS[0], {"prompt": "p"}, OUTPUT, policy=INSTANT)

        def submit_and_cancel() -> None:
            request_id = queue.submit(APPS[0], APPS[0], {"prompt": "p"}, OUTPUT, policy=MANUAL).request_id
            queue.cancel(request_id)

        rows.append((level, status, p50_us(samples, submit_instant), p50_us(samples, submit_and_cancel), fill))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="10,1000,10000,100000")
    parser.add_argument("--stores", default="memory,sqlite,redis")
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="fal-store-curve-") as tmp, contextlib.ExitStack() as services:
        work = Path(tmp)
        redis_url = None
        stores = [store.strip() for store in args.stores.split(",") if store.strip()]
        if "redis" in stores:
            server = procs.redis_server(work / "redis.log")
            if server is None:
                print("note: redis-server is not installed; the redis store is skipped", file=sys.stderr)
                stores.remove("redis")
            else:
                redis_url = services.enter_context(server).start().base_url + "/0"
        print("| store | live | status p50 µs (vs first) | submit p50 µs (vs first) | submit+cancel p50 µs (vs first) "
              "| fill /s |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for kind in stores:
            directory = work / kind
            directory.mkdir()
            with store_of(kind, directory, redis_url) as store:
                queue = Queue(store, VirtualClock(start=1_700_000_000.0, frozen=True), IdSource(1), MANUAL)
                rows = curve(queue, levels, args.samples)
            first = rows[0]
            for row in rows:
                cells = [f"{value:.0f} ({value / base:.2f}×)" for value, base in zip(row[1:4], first[1:4], strict=True)]
                print(f"| {kind} | {row[0]:,} | {' | '.join(cells)} | {row[4]:,.0f} |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
