"""What a run measured, and its Markdown report: the side-by-side table, the scaling curves, the SSE run
and the budget verdicts. Every figure is shown with its ratio to the baseline measured in the same run."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from perf.drivers import CycleResult, SseResult
from perf.load import LoadResult


@dataclass
class Ready:
    """Seconds from spawning the process to its ready line."""

    warm: list[float] = field(default_factory=list)  # starts with an existing state dir (the usual case)
    cold: float | None = None  # the first start, in a new state dir (the emulator makes its CA then)

    @property
    def median(self) -> float | None:
        return statistics.median(self.warm) if self.warm else None


@dataclass
class CurvePoint:
    level: int  # live requests asked for
    queued: int  # IN_QUEUE requests of the app, from the last one's queue_position
    stored: int  # every request submitted to this process so far (approximately: wrk counts answers)
    added: int  # requests this level's fill added
    fill_seconds: float
    rss_kb: int  # after the fill, before this level's load runs
    bytes_per_request: float  # RSS growth during this level's fill / requests it added
    disk_bytes_per_request: float | None  # growth of the SQLite store's files during the fill / requests added
    status: LoadResult
    submit: LoadResult


@dataclass
class Target:
    name: str
    status: LoadResult | None = None
    submit: LoadResult | None = None
    lifecycle: CycleResult | None = None
    download: LoadResult | None = None
    ready: Ready | None = None
    curve: list[CurvePoint] = field(default_factory=list)
    sse: SseResult | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    budget: str
    target: str
    results: dict[str, str]  # target name -> "PASS (..)" / "FAIL (..)" / "n/a (..)"
    margins: dict[str, float]  # target name -> value / limit, oriented so that >= 1 passes


# -- formatting -----------------------------------------------------------------------------------


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return ""
    return f" ({value / base:.2f}×)"


def _cell(value: float | None, base: float | None, digits: int = 0, *, is_baseline: bool = False) -> str:
    if value is None:
        return "–"
    return _num(value, digits) + ("" if is_baseline else _ratio(value, base))


def _latency(result: LoadResult | CycleResult | None, base: LoadResult | CycleResult | None, is_baseline: bool) -> str:
    if result is None:
        return "–"
    text = f"{result.p50_ms:.2f} / {result.p99_ms:.2f}"
    if is_baseline or base is None or not base.p50_ms or not base.p99_ms:
        return text
    return f"{text} ({result.p50_ms / base.p50_ms:.2f}× / {result.p99_ms / base.p99_ms:.2f}×)"


def _row(
    label: str,
    targets: list[Target],
    get: Callable[[Target], float | None],
    digits: int = 0,
    base_of: Callable[[Target], float | None] | None = None,
) -> str:
    """One row; ratios to the baseline's figure (`base_of` picks another baseline figure)."""
    base = (base_of or get)(targets[0])
    cells = [_cell(get(t), base, digits, is_baseline=i == 0) for i, t in enumerate(targets)]
    return f"| {label} | " + " | ".join(cells) + " |"


def main_table(targets: list[Target], ready_runs: int) -> list[str]:
    """The side-by-side table; `targets[0]` is the baseline."""

    def lat_row(
        label: str,
        get: Callable[[Target], LoadResult | CycleResult | None],
        base_of: Callable[[Target], LoadResult | CycleResult | None] | None = None,
    ) -> str:
        base = (base_of or get)(targets[0])
        cells = [_latency(get(t), base, i == 0) for i, t in enumerate(targets)]
        return f"| {label} | " + " | ".join(cells) + " |"

    def rps(result: LoadResult | None) -> float | None:
        return result.rps if result else None

    def cpu(result: LoadResult | None) -> float | None:
        return result.cpu_us_per_request if result else None

    def ready_median(t: Target) -> float | None:
        return t.ready.median if t.ready else None

    def ready_cold(t: Target) -> float | None:
        return t.ready.cold if t.ready else None

    lines = [
        "| measurement | " + " | ".join(t.name for t in targets) + " |",
        "|---|" + "---|" * len(targets),
        _row("status poll, req/s", targets, lambda t: rps(t.status)),
        lat_row("status poll p50 / p99, ms", lambda t: t.status),
        _row("status poll, server CPU per request, µs ²", targets, lambda t: cpu(t.status)),
        _row("submit (validation included), req/s ¹", targets, lambda t: rps(t.submit), 0, lambda t: rps(t.status)),
        lat_row("submit p50 / p99, ms ¹", lambda t: t.submit, lambda t: t.status),
        _row("submit, server CPU per request, µs ¹ ²", targets, lambda t: cpu(t.submit), 0, lambda t: cpu(t.status)),
        _row(
            "full lifecycles/s (submit → COMPLETED → result)",
            targets,
            lambda t: t.lifecycle.per_second if t.lifecycle else None,
        ),
        lat_row("lifecycle p50 / p99, ms", lambda t: t.lifecycle),
        _row("MP4 `Range: bytes=0-65535`, req/s", targets, lambda t: rps(t.download)),
        _row("MP4 `Range: bytes=0-65535`, MB/s", targets, lambda t: t.download.mb_per_s if t.download else None, 1),
        _row(f"start → ready, s (median of {ready_runs})", targets, ready_median, 3),
        _row("start → ready, s (first start, new state dir)", targets, ready_cold, 3),
    ]
    errors = [
        f"{t.name}: {name} {n} errors"
        for t in targets
        for name, n in (
            ("status", t.status.errors if t.status else 0),
            ("submit", t.submit.errors if t.submit else 0),
            ("lifecycle", t.lifecycle.errors if t.lifecycle else 0),
            ("download", t.download.errors if t.download else 0),
        )
        if n
    ]
    lines.append("")
    lines.append(
        "Ratios (×) are to the baseline's figure in the same row; ¹ the baseline has no submit: submit is compared "
        "with its status route, the practical limit; ² CPU time (user + system) the server process used during "
        "the run that counts, per answered request: lower is cheaper, and load from other processes moves it far "
        "less than throughput. Errors during these runs (transport errors and answers ≥ 400): "
        + ("; ".join(errors) if errors else "none.")
    )
    return lines


def curve_table(target: Target, baseline: Target) -> list[str]:
    base_rps = baseline.status.rps if baseline.status else None
    base_status, first = baseline.status, target.curve[0] if target.curve else None
    disk = any(point.disk_bytes_per_request is not None for point in target.curve)
    lines = [
        f"**{target.name}**",
        "",
        "| live (IN_QUEUE) | stored | status req/s | status p50 / p99 ms | status p50 vs first level | submit req/s "
        "| submit p50 / p99 ms (vs first level) | RSS MiB | RSS bytes per request added |"
        + (" file bytes per request added |" if disk else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if disk else ""),
    ]
    first_submit = first.submit if first else None
    for point in target.curve:
        growth = f"{point.status.p50_ms / first.status.p50_ms:.2f}×" if first and first.status.p50_ms else "–"
        lines.append(
            f"| {_num(point.queued)} | ≈{_num(point.stored)} | {_cell(point.status.rps, base_rps)} "
            f"| {_latency(point.status, base_status, False)} | {growth} | {_cell(point.submit.rps, base_rps)} "
            f"| {point.submit.p50_ms:.2f} / {point.submit.p99_ms:.2f}{_growth(point.submit, first_submit)} "
            f"| {point.rss_kb / 1024:,.1f} "
            f"| {_per_request(point.bytes_per_request, point)} |"
            + (f" {_per_request(point.disk_bytes_per_request or 0, point)} |" if disk else "")
        )
    return lines


MIN_ADDED = 500  # below this many requests added, page-sized allocations make bytes per request noise


def _per_request(value: float, point: CurvePoint) -> str:
    return _num(value) if point.added >= MIN_ADDED else "–"


def _growth(result: LoadResult, first: LoadResult | None) -> str:
    if first is None or result is first or not first.p50_ms or not first.p99_ms:
        return ""
    return f" ({result.p50_ms / first.p50_ms:.2f}× / {result.p99_ms / first.p99_ms:.2f}×)"


def sse_table(targets: list[Target]) -> list[str]:
    lines = [
        "| server | streams | opened (first event) | ended with COMPLETED | errors | all open after, s "
        "| all closed after completing, s | RSS per open stream, KB | server CPU while holding them |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in targets:
        sse = t.sse
        if sse is None:
            continue
        errors = ", ".join(f"{name}: {n}" for name, n in sse.errors.items()) or "0"
        per_stream = f"{sse.rss_per_stream_kb:.1f}" if sse.rss_per_stream_kb is not None else "–"
        cpu = f"{sse.hold_cpu:.0%} of a core over {sse.hold_seconds:.1f} s" if sse.hold_cpu is not None else "–"
        lines.append(
            f"| {t.name} | {_num(sse.streams)} | {_num(sse.opened)} | {_num(sse.completed)} | {errors} "
            f"| {sse.open_seconds:.2f} | {sse.close_seconds:.2f} | {per_stream} | {cpu} |"
        )
    return lines


# -- budgets --------------------------------------------------------------------------------------


def _verdict(margin: float | None, shown: str) -> str:
    if margin is None:
        return f"n/a ({shown})" if shown else "n/a"
    return f"{'PASS' if margin >= 1 else 'FAIL'} ({shown})"


# Per-store limits (issue 12): the memory store carries the tighter ones, the durable stores the looser.
STATUS_SHARE = {"memory": 0.60}
STATUS_SHARE_DURABLE = 0.40
SUBMIT_SHARE = {"memory": 0.40}
SUBMIT_SHARE_DURABLE = 0.25
PRISM_TIMES = 5.0
AIMOCK_TIMES = 1.0
BYTES_PER_REQUEST = 1536  # 1.5 KB per queued request, in memory
LATENCY_GROWTH = 1.25


def store_of(target: Target) -> str:
    """`emulator · sqlite` -> `sqlite`; `emulator · memory (granian)` -> `memory`."""
    return target.name.partition(" · ")[2].partition(" ")[0]


def _share_limit(shares: dict[str, float], durable: float, target: Target) -> float:
    return shares.get(store_of(target), durable)


def budgets(
    baseline: Target,
    emulators: list[Target],
    peers: dict[str, Target],
    *,
    sse_required: int,
    largest_level: int,
) -> list[Verdict]:
    """One verdict per budget and emulator. `peers` maps "prism" / "aimock" to their targets, when measured."""
    verdicts = []

    def add(budget: str, limit: str, evaluate: Callable[[Target], tuple[float | None, str]]) -> None:
        results, margins = {}, {}
        for target in emulators:
            margin, shown = evaluate(target)
            results[target.name] = _verdict(margin, shown)
            if margin is not None:
                margins[target.name] = margin
        verdicts.append(Verdict(budget, limit, results, margins))

    base_status = baseline.status.rps if baseline.status else None

    Evaluate = Callable[[Target], tuple[float | None, str]]

    def share_of_base(get: Callable[[Target], LoadResult | None], shares: dict[str, float], durable: float) -> Evaluate:
        def evaluate(t: Target) -> tuple[float | None, str]:
            result = get(t)
            if not (result and base_status):
                return None, "not measured"
            share, limit = result.rps / base_status, _share_limit(shares, durable, t)
            return share / limit, f"{share:.2f}× baseline, limit {limit:.2f}×"

        return evaluate

    def times_peer(get: Callable[[Target], LoadResult | None], peer: str, times: float) -> Evaluate:
        def evaluate(t: Target) -> tuple[float | None, str]:
            other = peers.get(peer)
            mine, theirs = get(t), get(other) if other else None
            if not (mine and theirs and theirs.rps):
                return None, f"no {other.name if other else peer} in this run"
            ratio = mine.rps / theirs.rps
            return ratio / times, f"{ratio:.2f}× {other.name if other else peer}"

        return evaluate

    def latency_growth(t: Target) -> tuple[float | None, str]:
        if len(t.curve) < 2 or not t.curve[0].status.p50_ms:
            return None, "no curve"
        first, last = t.curve[0], t.curve[-1]
        growth = last.status.p50_ms / first.status.p50_ms
        return LATENCY_GROWTH / growth, f"p50 {growth:.2f}× at {_num(last.queued)} vs {_num(first.queued)} live"

    def memory(t: Target) -> tuple[float | None, str]:
        if len(t.curve) < 2:
            return None, "no curve"
        last = t.curve[-1]
        if last.added < MIN_ADDED:
            return None, f"the last fill added only {last.added} requests"
        if last.bytes_per_request <= 0:
            return float("inf"), f"{last.bytes_per_request:,.0f} B/request"
        return BYTES_PER_REQUEST / last.bytes_per_request, f"{last.bytes_per_request:,.0f} B/request over the last fill"

    def streams(t: Target) -> tuple[float | None, str]:
        sse = t.sse
        if sse is None:
            return None, "not measured"
        clean = sse.completed == sse.streams and sse.error_count == 0
        shown = f"{sse.completed:,}/{sse.streams:,} clean, {sse.error_count} errors"
        if sse.streams < sse_required:
            shown += f"; only {sse.streams:,} streams"
        # pass/fail only: a pass has no margin to rank (infinite), a failure has none left
        return (float("inf") if clean and sse.streams >= sse_required else 0.0), shown

    def ready(t: Target) -> tuple[float | None, str]:
        median = t.ready.median if t.ready else None
        if median is None:
            return None, "not measured"
        return 1.5 / median, f"{median:.3f} s median"

    def status(t: Target) -> LoadResult | None:
        return t.status

    def submit(t: Target) -> LoadResult | None:
        return t.submit

    def limits(shares: dict[str, float], durable: float) -> str:
        named = ", ".join(f"{share:.2f}× ({store})" for store, share in shares.items())
        return f"≥ {named}, {durable:.2f}× (other stores) of the baseline's status"

    add(
        "status-poll throughput",
        limits(STATUS_SHARE, STATUS_SHARE_DURABLE),
        share_of_base(status, STATUS_SHARE, STATUS_SHARE_DURABLE),
    )
    add(
        "submit throughput",
        limits(SUBMIT_SHARE, SUBMIT_SHARE_DURABLE),
        share_of_base(submit, SUBMIT_SHARE, SUBMIT_SHARE_DURABLE),
    )
    add("status-poll throughput", f"≥ {PRISM_TIMES:.0f}× Prism", times_peer(status, "prism", PRISM_TIMES))
    add("status-poll throughput", f"≥ {AIMOCK_TIMES:.1f}× aimock", times_peer(status, "aimock", AIMOCK_TIMES))
    add("submit throughput", f"≥ {AIMOCK_TIMES:.1f}× aimock", times_peer(submit, "aimock", AIMOCK_TIMES))
    add(f"status latency with {_num(largest_level)} live", f"p50 ≤ {LATENCY_GROWTH}× that with 10", latency_growth)
    add("memory per queued request", f"≤ 1.5 KB ({BYTES_PER_REQUEST:,} B)", memory)
    add(f"{_num(sse_required)} concurrent SSE streams", "no errors, all end at COMPLETED", streams)
    add("start → ready", "< 1.5 s", ready)
    return verdicts


def peer_table(emulators: list[Target], peers: list[Target]) -> list[str]:
    """Each emulator's status, submit and lifecycle figures as a ratio to each peer's, measured in the same run."""
    if not peers:
        return []
    head = ["server"]
    for peer in peers:
        head += [f"status vs {peer.name}", f"submit vs {peer.name}", f"lifecycles vs {peer.name}"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]

    def ratio(mine: float | None, theirs: float | None) -> str:
        return f"{mine / theirs:.2f}×" if mine and theirs else "–"

    for target in emulators:
        cells = [target.name]
        for peer in peers:
            cells += [
                ratio(target.status.rps if target.status else None, peer.status.rps if peer.status else None),
                ratio(target.submit.rps if target.submit else None, peer.submit.rps if peer.submit else None),
                ratio(
                    target.lifecycle.per_second if target.lifecycle else None,
                    peer.lifecycle.per_second if peer.lifecycle else None,
                ),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def budget_table(verdicts: list[Verdict], emulators: list[Target]) -> list[str]:
    lines = [
        "| budget | limit | " + " | ".join(t.name for t in emulators) + " |",
        "|---|---|" + "---|" * len(emulators),
    ]
    for v in verdicts:
        lines.append(f"| {v.budget} | {v.target} | " + " | ".join(v.results.get(t.name, "–") for t in emulators) + " |")
    return lines


def most_at_risk(verdicts: list[Verdict]) -> list[str]:
    """The failed budgets, smallest margin first, and the passed budget closest to failing.

    A margin is value / limit, oriented so that below 1 fails (pass/fail-only budgets have none when passed).
    """
    failed: list[tuple[float, str]] = []
    closest: tuple[float, str] | None = None
    for v in verdicts:
        for name, margin in v.margins.items():
            text = f"{v.budget} ({v.target}) on {name}: {v.results[name]}, margin {margin:.2f}"
            if margin < 1:
                failed.append((margin, text))
            elif margin != float("inf") and (closest is None or margin < closest[0]):
                closest = (margin, text)
    failed.sort()
    lines = [f"Most at risk: {failed[0][1] if failed else closest[1] if closest else 'nothing measured'}."]
    if len(failed) > 1:
        lines.append("Also failed: " + "; ".join(text for _, text in failed[1:]) + ".")
    if failed and closest:
        lines.append(f"Closest to failing among the passes: {closest[1]}.")
    return lines


def cpu_implied(baseline: Target, emulators: list[Target], peers: dict[str, Target]) -> list[str]:
    """What the CPU cost per request implies for the throughput ratios: on a machine where the server has a core
    to itself, its throughput is about 1 / (CPU per request), so a ratio of CPU costs is a ratio of throughputs
    that other processes' load moves far less than the measured one."""

    def cpu(result: LoadResult | None) -> float | None:
        return result.cpu_us_per_request if result else None

    lines = []
    base = cpu(baseline.status)
    for target in emulators:
        parts = []
        for what, mine, theirs, other in (
            ("status", cpu(target.status), base, "the baseline's status"),
            ("submit", cpu(target.submit), base, "the baseline's status"),
            *(
                (what, cpu(getattr(target, what)), cpu(getattr(peer, what)), peer.name)
                for peer in peers.values()
                for what in ("status", "submit")
            ),
        ):
            if mine and theirs:
                parts.append(f"{what} {theirs / mine:.2f}× {other}")
        if parts:
            lines.append(f"- {target.name}: " + "; ".join(parts))
    if not lines:
        return []
    return [
        "By server CPU per request (the steadier figure on a shared machine: throughput ≈ 1 / CPU per request when "
        "the server has a core to itself), the same ratios are:",
        "",
        *lines,
    ]
