"""Side by side: a bare Starlette app under the stock uvicorn CLI (the practical limit), the same app started
as the emulator starts, fal-emulator (each store it offers), Prism and aimock (fal's queue).

    .venv/bin/python benchmarks/run.py            # full run, about 12 minutes
    .venv/bin/python benchmarks/run.py --quick    # CI-sized: short runs, 10 and 1,000 live requests, no peers

One run starts every server on 127.0.0.1 and a free port and measures, with wrk (`-t1 -c32`; a Python
generator, labelled, when wrk is missing):

1. status-poll throughput, p50/p99 and server CPU per request (a real request's status URL; Prism: the same
   document's status route; aimock: a request made through its fal queue handler);
2. submit throughput, validation included, and server CPU per request (the seed body of
   fal-ai/veo3/image-to-video);
3. full lifecycles per second with `--policy instant` (submit → COMPLETED → result; asyncio + httpx);
4. MP4 download with `Range: bytes=0-65535`, requests/s and MB/s;
5. start → ready line, median of several starts;

then the scaling curves (status and submit with 10 … 100,000 live requests, RSS per request) and 1,000
concurrent SSE status streams closed at COMPLETED, and prints one Markdown report with every figure's
ratio to the baseline, the ratios to each peer and a PASS/FAIL verdict per budget. Measurements 1-4 run
interleaved over all servers, `--rounds` times, keeping each server's best run: load from other processes then
costs one sample, not one server. Everything started here is stopped before the script exits; every run is
bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from perf import drivers, procs, report
from perf.drivers import AUTH, ENDPOINT, JSON_HEADERS, SEED_BYTES
from perf.load import Load, LoadResult, LoadTool, load_tool, run_measured
from perf.report import CurvePoint, Ready, Target

DOCUMENT = procs.ROOT / "openapi" / "fal-ai__veo3__image-to-video.yaml"
CLIP = "1280x720_8s_audio.mp4"
RANGE = {"Range": "bytes=0-65535"}
JOURNAL_WARMUP = 11_000  # status GETs before the curve: the journal keeps its last 10,000 exchanges


PARTS = frozenset({"ready", "curves", "sse"})  # besides the side-by-side table, which always runs


@dataclass(frozen=True)
class Peers:
    """The peers' programs, installed (None: left out, with a note saying why)."""

    prism: Path | None = None
    aimock: Path | None = None


@dataclass(frozen=True)
class Plan:
    quick: bool
    seconds: int  # each load run of measurements 1-4
    rounds: int  # interleaved rounds of measurements 1-4; the best run of each server counts
    curve_seconds: int
    levels: tuple[int, ...]
    ready_runs: int
    streams: int
    hold: float  # seconds the SSE streams are held open before their requests complete
    prism: bool
    aimock: bool
    granian: bool  # also each store's app under granian's CLI (side by side only)
    stores: tuple[str, ...]
    parts: frozenset[str] = PARTS  # which measurements run


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def best(current: LoadResult | None, new: LoadResult) -> LoadResult:
    """The better of two runs: one without errors over one with, then the higher throughput."""
    if current is None:
        return new
    return max(current, new, key=lambda result: (result.errors == 0, result.rps))


@dataclass
class Live:
    """A running server in the side-by-side rounds and what to send it."""

    target: Target
    base_url: str
    status_url: str
    pid: int | None = None  # the server's process, whose CPU time each load run reads
    headers: dict[str, str] = dataclasses.field(default_factory=dict)  # sent with every call, besides AUTH
    submit_path: str | None = f"/{ENDPOINT}"  # None: no submit route (the baselines)
    lifecycle: Callable[[str, float], drivers.CycleResult] | None = None
    download_url: str | None = None
    # A new request's status URL, asked for before each status run: for a server that forgets requests (aimock
    # keeps its last 10,000), whose first request is gone once the submit runs have made more.
    fresh_status: Callable[[], str] | None = None

    def status_load(self) -> Load:
        if self.fresh_status is not None:
            self.status_url = self.fresh_status()
        return Load(self.status_url, headers={**AUTH, **self.headers})


REDIS: list[procs.RedisDatabases] = []  # the run's redis-server, when the Redis store is measured


def store_args(store: str) -> tuple[str, ...]:
    """The `serve` flags of a fresh emulator over `store` (Redis: an emptied database of the run's server)."""
    if store == "redis":
        return ("--store", "redis", "--redis-url", REDIS[0].fresh())
    return () if store == "memory" else ("--store", store)


def emulator_name(store: str) -> str:
    return f"emulator · {store}"


BASELINE = "baseline (bare Starlette, uvicorn CLI)"
BASELINE_AS_EMULATOR = "bare Starlette, started as the emulator"
AIMOCK = f"aimock {procs.AIMOCK_VERSION}"
PRISM = f"Prism {procs.PRISM_VERSION}"
# What aimock answers a fal submit with (its fixture): the emulator's output shape for the seed request.
AIMOCK_OUTPUT = {
    "video": {
        "url": "https://v3.fal.media/files/penguin/output.mp4",
        "content_type": "video/mp4",
        "file_name": "output.mp4",
        "file_size": 1_000_000,
    }
}


def aimock_live(base_url: str, pid: int) -> Live:
    """aimock's fal queue: `/fal/{endpoint}` with `x-fal-target-host: queue.fal.run`; its answers name fal's own
    host (`https://queue.fal.run/...`), which the lifecycle driver maps back to aimock's `/fal/` paths."""
    headers = dict(procs.AIMOCK_HOST_HEADER)
    submit_path = f"{procs.AIMOCK_PREFIX}/{ENDPOINT}"

    def rebase(url: str) -> str:
        return url.replace("https://queue.fal.run", f"{base_url}{procs.AIMOCK_PREFIX}", 1)

    def fresh_status() -> str:
        return rebase(drivers.submit_seed(f"{base_url}{submit_path}", headers)["status_url"])

    def cycles(url: str, seconds: float) -> drivers.CycleResult:
        return drivers.lifecycles(url, seconds, submit_path=submit_path, headers=headers, rebase=rebase)

    return Live(
        Target(AIMOCK), base_url, fresh_status(), pid, headers, submit_path, lifecycle=cycles, fresh_status=fresh_status
    )


@contextlib.contextmanager
def side_by_side(plan: Plan, work: Path, peers: Peers) -> Iterator[list[Live]]:
    """Start both baselines, one emulator per store, Prism and aimock; stop them all on exit."""
    with contextlib.ExitStack() as stack:
        lives: list[Live] = []
        for name, start in ((BASELINE, procs.baseline), (BASELINE_AS_EMULATOR, procs.baseline_as_emulator)):
            base = stack.enter_context(start(work / f"{name.split()[0]}-{len(lives)}.log")).start()
            lives.append(
                Live(
                    Target(name),
                    base.base_url,
                    f"{base.base_url}/status",
                    base.pid,
                    submit_path=None,
                    lifecycle=drivers.baseline_cycles,
                    download_url=f"{base.base_url}/files/{CLIP}",
                )
            )
        for store in plan.stores:
            emulator = stack.enter_context(procs.Emulator(work / f"state-{store}", extra_args=store_args(store)))
            running = emulator.start()
            first = drivers.submit_once(running.base_url)  # instant policy: COMPLETED at once
            lives.append(
                Live(
                    Target(emulator_name(store)),
                    running.base_url,
                    first["status_url"],
                    running.pid,
                    lifecycle=drivers.lifecycles,
                    download_url=f"{running.base_url}/files/{CLIP}",
                )
            )
        if plan.granian:
            for store in plan.stores:
                args = store_args(store)  # `--store X [--redis-url URL]` as FAL_EMULATOR_* variables
                env = {"FAL_EMULATOR_STORE": store}
                if "--redis-url" in args:
                    env["FAL_EMULATOR_REDIS_URL"] = args[args.index("--redis-url") + 1]
                server = procs.granian_emulator(work / f"granian-{store}", work / f"granian-{store}.log", env)
                running = stack.enter_context(server).start()
                first = drivers.submit_once(running.base_url)
                lives.append(
                    Live(
                        Target(f"{emulator_name(store)} (granian)"),
                        running.base_url,
                        first["status_url"],
                        running.pid,
                        lifecycle=drivers.lifecycles,
                        download_url=f"{running.base_url}/files/{CLIP}",
                    )
                )
        if peers.prism is not None:
            running = stack.enter_context(procs.prism(peers.prism, DOCUMENT, work / "prism.log")).start()
            status_url = f"{running.base_url}/{ENDPOINT}/requests/{uuid.uuid4()}/status"
            lives.append(Live(Target(PRISM), running.base_url, status_url, running.pid))
        if peers.aimock is not None:
            server = stack.enter_context(procs.aimock(peers.aimock, AIMOCK_OUTPUT, work, work / "aimock.log"))
            running = server.start()
            lives.append(aimock_live(running.base_url, running.pid))
        yield lives


def measure_side_by_side(plan: Plan, tool: LoadTool, lives: list[Live]) -> None:
    """Measurements 1-4, each over every server in turn, `plan.rounds` times; the best run of each counts."""
    for live in lives:  # warm up each server's code paths (and a JIT) before any measured run
        tool.run(live.status_load(), 1)
    for round_ in range(1, plan.rounds + 1):
        step = f"round {round_}/{plan.rounds}"
        for live in lives:
            log(f"{step}: status poll on {live.target.name}")
            result = run_measured(tool, live.status_load(), plan.seconds, live.pid)
            live.target.status = best(live.target.status, result)
        for live in lives:
            if live.submit_path is not None:
                log(f"{step}: submit on {live.target.name}")
                load = Load(f"{live.base_url}{live.submit_path}", "POST", {**JSON_HEADERS, **live.headers}, SEED_BYTES)
                live.target.submit = best(live.target.submit, run_measured(tool, load, plan.seconds, live.pid))
        for live in lives:
            if live.lifecycle is not None:
                log(f"{step}: lifecycles on {live.target.name}")
                cycles = live.lifecycle(live.base_url, plan.seconds)
                current = live.target.lifecycle
                if current is None or cycles.per_second > current.per_second:
                    live.target.lifecycle = cycles
        for live in lives:
            if live.download_url is not None:
                log(f"{step}: MP4 download with Range on {live.target.name}")
                load = Load(live.download_url, headers={**AUTH, **RANGE})
                live.target.download = best(live.target.download, tool.run(load, plan.seconds))


def timed_starts(runs: int, start: Callable[[], float]) -> Ready:
    """`runs` + 1 starts: the first is the cold one (new state dir), the others the warm ones."""
    ready = Ready(cold=start())
    ready.warm = [start() for _ in range(runs)]
    return ready


def measure_ready(plan: Plan, work: Path, targets: dict[str, Target], peers: Peers) -> None:
    def started(server: procs.ServerProcess) -> float:
        with server:
            return server.start().ready_seconds

    makers: dict[str, Callable[[Path], procs.ServerProcess]] = {
        "baseline": procs.baseline,
        "baseline_as_emulator": procs.baseline_as_emulator,
    }
    for key, make in makers.items():
        log(f"start → ready: {targets[key].name}")

        def baseline(make: Callable[[Path], procs.ServerProcess] = make) -> float:
            return started(make(work / "ready.log"))

        targets[key].ready = timed_starts(plan.ready_runs, baseline)
    for store in plan.stores:

        def emulator(store: str = store) -> float:
            # one state dir for all: the first start makes the CA and the trust bundle in it
            with procs.Emulator(work / f"ready-{store}", extra_args=store_args(store)) as server:
                return server.start().ready_seconds

        log(f"start → ready: {emulator_name(store)}")
        targets[store].ready = timed_starts(plan.ready_runs, emulator)
    if peers.prism is not None and "prism" in targets:
        binary = peers.prism
        log("start → ready: Prism")
        targets["prism"].ready = timed_starts(
            min(plan.ready_runs, 3), lambda: started(procs.prism(binary, DOCUMENT, work / "prism-ready.log"))
        )
    if peers.aimock is not None and "aimock" in targets:
        script = peers.aimock
        log("start → ready: aimock")
        targets["aimock"].ready = timed_starts(
            min(plan.ready_runs, 3),
            lambda: started(procs.aimock(script, AIMOCK_OUTPUT, work, work / "aimock-ready.log")),
        )


def measure_curve(plan: Plan, tool: LoadTool, work: Path, store: str, target: Target) -> None:
    """Status and submit with more and more live (IN_QUEUE) requests, and RSS per request, on a new process."""
    with procs.Emulator(work / f"curve-{store}", extra_args=store_args(store)) as emulator:
        running = emulator.start()
        first = drivers.submit_once(running.base_url)
        log(f"curve {target.name}: warm-up ({JOURNAL_WARMUP:,} status GETs fill the journal to its cap)")
        drivers.get_many(first["status_url"], JOURNAL_WARMUP)
        stored, queued = 1, 0
        submit = Load(f"{running.base_url}/{ENDPOINT}", "POST", JSON_HEADERS, SEED_BYTES)
        state = emulator.process.state_dir
        for level in plan.levels:
            before, disk_before = procs.rss_kb(running.pid), store_bytes(state)
            filled = drivers.fill(running.base_url, level - queued)
            after, disk_after = procs.rss_kb(running.pid), store_bytes(state)
            queued, stored = filled.queued, stored + filled.added
            log(f"curve {target.name}: {queued:,} live (fill {filled.added:,} in {filled.seconds:.1f} s)")
            status = run_measured(tool, Load(filled.last["status_url"], headers=AUTH), plan.curve_seconds, running.pid)
            # instant policy: these complete, the queue stays
            submitted = run_measured(tool, submit, plan.curve_seconds, running.pid)
            target.curve.append(
                CurvePoint(
                    level=level,
                    queued=queued,
                    stored=stored,
                    added=filled.added,
                    fill_seconds=filled.seconds,
                    rss_kb=after,
                    bytes_per_request=(after - before) * 1024 / filled.added,
                    disk_bytes_per_request=(disk_after - disk_before) / filled.added if disk_after else None,
                    status=status,
                    submit=submitted,
                )
            )
            stored += submitted.requests


def store_bytes(state_dir: Path) -> int:
    """Bytes of the SQLite store's files (database, WAL, shared memory) in `state_dir`; 0 when there are none."""
    return sum(path.stat().st_size for path in state_dir.glob("*.sqlite3*") if path.is_file())


def measure_sse(plan: Plan, work: Path, store: str, target: Target) -> None:
    with procs.Emulator(work / f"sse-{store}", extra_args=store_args(store)) as emulator:
        running = emulator.start()
        log(f"{plan.streams:,} SSE streams on {target.name}")
        target.sse = drivers.sse_streams(running.base_url, plan.streams, pid=running.pid, hold=plan.hold)


def raise_fd_limit(needed: int) -> None:
    """Each SSE stream is a socket on both sides; the servers started here inherit this process's limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def render(plan: Plan, tool: LoadTool, targets: list[Target], notes: list[str], started: float, load0: str) -> str:
    baseline, emulators = targets[0], [t for t in targets if t.name.startswith("emulator")]
    peers = {key: t for key, name in (("prism", PRISM), ("aimock", AIMOCK)) for t in targets if t.name == name}
    largest = max((t.curve[-1].queued for t in emulators if t.curve), default=plan.levels[-1])
    verdicts = report.budgets(baseline, emulators, peers, sse_required=1000, largest_level=largest)
    lines = [
        f"## fal-emulator benchmark ({'quick' if plan.quick else 'full'} run)",
        "",
        f"{datetime.datetime.now().isoformat(timespec='seconds')} · {platform.node()} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · {http_stack()} · "
        f"load tool: {'`wrk -t1 -c32`' if tool.name == 'wrk' else tool.name + ', 32 connections'} "
        f"({plan.seconds} s runs, "
        f"best of {plan.rounds} interleaved rounds; curve runs {plan.curve_seconds} s) · "
        f"load average at start {load0}, at end {load_average()} · took {time.perf_counter() - started:.0f} s",
        "",
        *report.main_table(targets, plan.ready_runs),
        "",
        "Lifecycles are driven by a Python client (asyncio + httpx, 16 tasks); on the baselines a cycle is three GETs "
        "of the status route through the same client, so that ratio compares like with like (and the client, not "
        "the server, may be the limit). Download on the baselines: Starlette's FileResponse of the same clip. "
        f"{BASELINE_AS_EMULATOR}: the same app on a pre-bound socket and `uvicorn.Server.serve`, on the event loop "
        "`fal-emulator serve` runs; its ratio to the baseline is what the emulator's way of starting costs. "
        "aimock: its fal queue handler (`/fal/{endpoint}` and `x-fal-target-host: queue.fal.run`, a fixture "
        "answering every submit, COMPLETED at once), the seed request's body; its submit parses the JSON but "
        "validates nothing.",
        "",
    ]
    if peers:
        lines += ["### Side by side with the peers", "", *report.peer_table(emulators, list(peers.values())), ""]
    lines += [
        "### Scaling: status and submit with live requests in the store",
        "",
        "Live requests are `X-Fal-Emulator-Scenario: manual` submits (they stay IN_QUEUE); status polls the last "
        "one (the largest queue_position); submit runs use the instant policy, so they add stored but not live "
        "requests. Bytes per request: RSS growth (VmRSS) during that level's fill / requests it added (and, for "
        "SQLite, the growth of its files); not shown below 500 added requests, where page-sized steps dominate.",
        "",
    ]
    for target in emulators:
        if target.curve:
            lines += [*report.curve_table(target, baseline), ""]
    if any(t.sse for t in emulators):
        lines += ["### Concurrent SSE status streams", "", *report.sse_table(emulators), ""]
    lines += ["### Budgets", "", *report.budget_table(verdicts, emulators), ""]
    implied = report.cpu_implied(baseline, emulators, peers)
    if implied:
        lines += [*implied, ""]
    for key, times in (("prism", report.PRISM_TIMES), ("aimock", report.AIMOCK_TIMES)):
        peer = peers.get(key)
        if peer and peer.status and baseline.status and peer.status.rps:
            lines += [
                f"For scale: the baseline's status throughput is {baseline.status.rps / peer.status.rps:.2f}× "
                f"{peer.name}'s here, so ≥ {times:g}× {peer.name} needs an emulator at "
                f"{times * peer.status.rps / baseline.status.rps:.2f}× the baseline.",
                "",
            ]
    lines += report.most_at_risk(verdicts)
    if plan.quick:
        lines += ["", "Quick run: short runs and small levels; the verdicts are indicative only."]
    all_notes = notes + [f"{t.name}: {note}" for t in targets for note in t.notes]
    if all_notes:
        lines += ["", "Notes:", *[f"- {note}" for note in all_notes]]
    return "\n".join(lines)


def http_stack() -> str:
    """uvicorn's HTTP parser and event loop, as every server started here picks them (`auto`)."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn {importlib.metadata.version('uvicorn')} ({http}, {loop})"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def parse_plan(argv: list[str] | None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, 10 and 1,000 live requests, no Prism")
    parser.add_argument("--seconds", type=int, help="seconds of each load run (default 6; quick 1)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of measurements 1-4 (default 2; quick 1)")
    parser.add_argument("--levels", help="live-request levels, comma-separated (default 10,1000,10000,100000)")
    parser.add_argument("--streams", type=int, help="concurrent SSE streams (default 1000)")
    parser.add_argument(
        "--stores", default="memory,sqlite,redis", help="emulator stores to measure (default memory,sqlite,redis)"
    )
    parser.add_argument("--no-prism", action="store_true", help="leave Prism out")
    parser.add_argument("--no-aimock", action="store_true", help="leave aimock out")
    parser.add_argument("--peers", action="store_true", help="with --quick: measure Prism and aimock too")
    parser.add_argument(
        "--granian", action="store_true", help="also serve each store's app under granian (pip install granian)"
    )
    parser.add_argument("--load-tool", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--skip", default="", help="leave out some of: ready, curves, sse (comma-separated; the table always runs)"
    )
    parser.add_argument("--json", type=Path, help="also write every raw figure to this JSON file")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    levels = tuple(int(x) for x in args.levels.split(",")) if args.levels else ((10, 1000) if quick else None)
    plan = Plan(
        quick=quick,
        seconds=args.seconds or (1 if quick else 6),
        rounds=args.rounds or (1 if quick else 2),
        curve_seconds=max(1, (args.seconds or 0) // 2) if args.seconds else (1 if quick else 5),
        levels=levels or (10, 1_000, 10_000, 100_000),
        ready_runs=3 if quick else 5,
        streams=args.streams or 1000,
        hold=1.0 if quick else 5.0,
        prism=not ((quick and not args.peers) or args.no_prism),
        aimock=not ((quick and not args.peers) or args.no_aimock),
        granian=bool(args.granian),
        stores=tuple(s.strip() for s in args.stores.split(",") if s.strip()),
        parts=PARTS - {part.strip() for part in args.skip.split(",")},
    )
    if sorted(plan.levels) != list(plan.levels) or plan.levels[0] < 1:
        parser.error("--levels must be ascending and at least 1")
    return plan, args


def main(argv: list[str] | None = None) -> int:
    plan, args = parse_plan(argv)
    started, load0 = time.perf_counter(), load_average()
    tool = load_tool(args.load_tool)
    notes: list[str] = []
    if tool.name != "wrk":
        notes.append(
            f"measured with {tool.name}, which is slower than the servers: its figures and verdicts say little; "
            "install wrk (`apt-get install -y wrk`) for comparable ones"
        )
    help_text = procs.serve_help()
    stores = []
    for store in plan.stores:
        if store == "memory" or procs.supports_store(help_text, store):
            stores.append(store)
        else:
            notes.append(f"store {store!r} skipped: `fal-emulator serve --help` offers no `--store {store}`")
    plan = dataclasses.replace(plan, stores=tuple(stores))
    peers = Peers(
        prism=procs.prism_binary(notes.append) if plan.prism else None,
        aimock=procs.aimock_script(notes.append) if plan.aimock else None,
    )
    if not plan.prism:
        notes.append("Prism left out (--quick or --no-prism)")
    if not plan.aimock:
        notes.append("aimock left out (--quick or --no-aimock)")
    if plan.granian and not procs.granian_available():
        notes.append("granian left out: not installed (`.venv/bin/pip install granian`)")
        plan = dataclasses.replace(plan, granian=False)
    raise_fd_limit(plan.streams * 2 + 256)
    for note in notes:
        log(note)

    with tempfile.TemporaryDirectory(prefix="fal-bench-") as tmp, contextlib.ExitStack() as services:
        work = Path(tmp)
        if "redis" in plan.stores:
            server = procs.redis_server(work / "redis.log")
            if server is None:
                notes.append("store 'redis' skipped: redis-server is not installed (apt-get install redis-server)")
                plan = dataclasses.replace(plan, stores=tuple(s for s in plan.stores if s != "redis"))
            else:
                REDIS.append(procs.RedisDatabases(services.enter_context(server).start().base_url))
        with side_by_side(plan, work, peers) as lives:
            measure_side_by_side(plan, tool, lives)
        targets = [live.target for live in lives]
        by_key = {"baseline": targets[0], "baseline_as_emulator": targets[1]}
        by_key.update({store: t for store, t in zip(plan.stores, targets[2 : 2 + len(plan.stores)], strict=True)})
        for key, name in (("prism", PRISM), ("aimock", AIMOCK)):
            by_key.update({key: t for t in targets if t.name == name})  # noqa: B035 (at most one)
        if "ready" in plan.parts:
            measure_ready(plan, work, by_key, peers)
        for store in plan.stores:
            try:
                if "curves" in plan.parts:
                    measure_curve(plan, tool, work, store, by_key[store])
            except (RuntimeError, drivers.BenchError, OSError) as exc:
                by_key[store].notes.append(f"curve stopped: {exc}")
            try:
                if "sse" in plan.parts:
                    measure_sse(plan, work, store, by_key[store])
            except (RuntimeError, drivers.BenchError, OSError) as exc:
                by_key[store].notes.append(f"SSE run stopped: {exc}")

    print(render(plan, tool, targets, notes, started, load0))
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(t) for t in targets], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
