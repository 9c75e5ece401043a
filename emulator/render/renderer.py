"""The emulator's side of rendering: plan a request's clip at submit, render it while the request runs,
hold the request IN_PROGRESS until the file exists, and serve it.

    renderer = Renderer(settings, catalog=catalog, media=media, reader=uploads.read_url, clock=clock)
    job = renderer.plan(endpoint, arguments)          # at submit; None: the fixture clip answers
    outcome = Outcome.success({"video": renderer.pending_file(job, base_url)})
    queue.finish_gate = renderer.finish_gate          # starts the render as the request starts, holds it till done

Renders run on a pool of threads sized to the machine's cores (shared by every emulator in the process);
the encoder and Pillow release the GIL, so encoding never holds the event loop. The gate reads only what
the store keeps (the request's input and its planned outcome, whose file name is the render key), so it
works the same over the SQLite store, in another worker process and after a restart: a render lost with
its process is started again, and one that cannot be (its upload was deleted, rendering is now off) or
that fails completes with the fixture clip.

One render per file across processes: a process renders a file only while it holds the file's claim
(`RenderCache.claim`); another process sharing the state dir waits for the file. A render stops (no frame
made after, no file written) when the last request of this process waiting for it is cancelled
(`forget`), on `reset` and on server shutdown (`close`). Eviction never removes a render in flight, one
made and not yet collected by its requests, or one being downloaded (`hold`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fal_emulator.catalog import Catalog, Endpoint
from fal_emulator.clock import Clock
from fal_emulator.errors import RequestError
from fal_emulator.media import MEDIA_PREFIX, MediaLibrary
from fal_emulator.queue import Outcome, Request
from fal_emulator.render.cache import Claim, RenderCache
from fal_emulator.render.job import Cancelled, Reader, RenderJob, Stop, is_render_name, plan, render_file
from fal_emulator.settings import Settings
from fal_emulator.video import ClipSpec, clip_for

log = logging.getLogger("fal_emulator.render")
Inputs = Callable[[Endpoint, Any], Mapping[str, Any]]  # (endpoint, a stored input) -> the values the runner uses
MEMORY = 1024  # render outcomes remembered in memory (ready times, sizes, failures), most recent first

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def shared_pool() -> ThreadPoolExecutor:
    """The render threads every renderer of this process shares, one per core.

    Threads, not processes: x264 (PyAV's `encode`) and Pillow's resampling release the GIL, so renders use
    every core while the event loop keeps answering, and nothing depends on how the host program starts
    (a process pool would re-import the user's `__main__`).
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=cores(), thread_name_prefix="fal-emulator-render")
        return _pool


def pending_name(outcome: Outcome) -> str | None:
    """The render file name of a planned outcome still waiting for its file (`file_size` 0), else None."""
    video = outcome.body.get("video") if outcome.ok else None
    if not isinstance(video, Mapping) or video.get("file_size"):
        return None
    name = video.get("file_name")
    return name if isinstance(name, str) and is_render_name(name) else None


class _Recent(OrderedDict[str, Any]):
    def remember(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > MEMORY:
            self.popitem(last=False)


@dataclass
class _Render:
    """A render in flight in this process: its job, its stop switch, its claim and the requests waiting for it."""

    job: RenderJob
    stop: Stop
    claim: Claim
    waiting: set[str] = field(default_factory=set)  # request ids
    future: Future[tuple[int, str]] | None = None


class Renderer:
    """Plans, runs, caches and serves the rendered clips of one emulator (see the module docstring).

    `executor` runs `render_file(job, path, stop)`; None means the shared render threads. `reader` reads an
    uploaded file's bytes by URL (`Uploads.read_url`).
    """

    def __init__(
        self, settings: Settings, *, catalog: Catalog, media: MediaLibrary, reader: Reader, clock: Clock,
        executor: Executor | None = None, inputs: Inputs | None = None,
    ) -> None:  # fmt: skip
        self.enabled = settings.render == "on"
        # A stored input as the runner reads it: the validated, coerced values (`Emulator.runner_values`).
        self.inputs: Inputs = inputs or (lambda endpoint, stored: stored)
        self.cache = RenderCache(settings.state_dir / "renders", settings.render_cache_mb * 1024 * 1024)
        self.catalog = catalog
        self.media = media
        self.reader = reader
        self.clock = clock
        self.executor = executor  # None: the shared render threads (tests may put their own here)
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)  # notified whenever a render's outcome is recorded
        self._running: dict[str, _Render] = {}
        self._uncollected: dict[str, set[str]] = {}  # name -> requests whose render is done, not yet collected
        self._serving: Counter[str] = Counter()  # name -> downloads in progress
        self._closed = False
        self._finished = _Recent()  # name -> clock time its render finished in this process
        self._files = _Recent()  # name -> (file size, sha256)
        self._failed = _Recent()  # name -> (error, spec)
        self._held = _Recent()  # names the gate answered "not yet" for

    # -- submit --------------------------------------------------------------------------------

    def plan(self, endpoint: Endpoint, arguments: Mapping[str, Any]) -> RenderJob | None:
        """The job rendering this request's output, or None (rendering off, or no readable input)."""
        if not self.enabled:
            return None
        try:
            return plan(endpoint, arguments, self.reader)
        except Exception as exc:  # an input that passed the submit checks but does not decode: the fixture
            log.warning("cannot render %s: %s", endpoint.endpoint_id, exc)
            return None

    def pending_file(self, job: RenderJob, base_url: str, faults: Sequence[str] = ()) -> dict[str, Any]:
        """fal's `File` for the job's output, its `file_size` 0 until the render is done (filled by the gate).

        `faults` (`truncate`, `slow`: a scenario's) go in the URL, as for a fixture clip.
        """
        query = "?fault=" + ",".join(faults) if faults else ""
        return {
            "url": f"{base_url.rstrip('/')}{MEDIA_PREFIX}{job.name}{query}",
            "content_type": "video/mp4",
            "file_name": job.name,
            "file_size": 0,
        }

    # -- the queue's finish gate ---------------------------------------------------------------

    def finish_gate(self, request: Request, now: float) -> tuple[Outcome, float] | None:
        """`Queue.finish_gate`: None while the request's clip is rendering, else its outcome and ready time."""
        name = pending_name(request.outcome)
        if name is None:
            return request.outcome, 0.0
        try:
            return self._gate(request, name, now)
        except Exception as exc:  # never leave a request stuck: the fixture clip answers
            log.exception("render gate failed for %s", request.request_id)
            return self._fallback(request, None, str(exc)), 0.0

    def _gate(self, request: Request, name: str, now: float) -> tuple[Outcome, float] | None:
        with self._lock:
            render = self._running.get(name)
            if render is not None:
                render.waiting.add(request.request_id)
                self._held.remember(name, True)
                return None
            failed = self._failed.get(name)
        path = self.cache.get(name)
        if path is not None:
            return self._collect(request, name, path, now)
        if failed is not None:
            return self._fallback(request, failed[1], failed[0]), 0.0
        if self._closed:
            return None  # shutting down: the request stays IN_PROGRESS in the store, rendered after a restart
        job = self._replan(request)
        if job is None or job.name != name:
            return self._fallback(request, None, "its input can no longer be read"), 0.0
        claim = self.cache.claim(name)
        with self._lock:
            self._held.remember(name, True)
        if claim is None:  # another process sharing the state dir renders it: wait for its file
            return None
        path = self.cache.get(name)
        if path is not None:  # that process finished it just now
            claim.release()
            return self._collect(request, name, path, now)
        self._start(job, claim, request.request_id)
        return None

    def _collect(self, request: Request, name: str, path: Path, now: float) -> tuple[Outcome, float]:
        """The outcome of a request whose file exists: the planned one with the file's size."""
        size = path.stat().st_size
        with self._lock:
            waiting = self._uncollected.get(name)
            if waiting is not None:
                waiting.discard(request.request_id)
                if not waiting:
                    del self._uncollected[name]
            ready_at = self._finished.get(name, now if name in self._held else 0.0)
        return _with_size(request.outcome, size), ready_at

    def _replan(self, request: Request) -> RenderJob | None:
        endpoint = self.catalog.get(request.endpoint_id)
        return self.plan(endpoint, self.inputs(endpoint, request.input)) if endpoint is not None else None

    def _start(self, job: RenderJob, claim: Claim, request_id: str) -> None:
        render = _Render(job, Stop(), claim, {request_id})
        with self._lock:
            if job.name in self._running:  # started by another thread meanwhile
                self._running[job.name].waiting.add(request_id)
                claim.release()
                return
            self._running[job.name] = render
        target = str(self.cache.path(job.name))
        executor = self.executor or shared_pool()
        try:
            render.future = executor.submit(render_file, job, target, render.stop)
        except RuntimeError as exc:  # the pool is shut down (interpreter exit)
            failed: Future[tuple[int, str]] = Future()
            failed.set_exception(exc)
            render.future = failed
        render.future.add_done_callback(lambda done: self._done(job.name, done))

    def _done(self, name: str, future: Future[tuple[int, str]]) -> None:
        """Runs on the render thread when a render ends: record how it went, give the claim up, trim the cache
        (never a render in flight, one made and not yet collected by its requests, or one being downloaded),
        then wake `wait`. The render counts as running until its outcome is recorded, so the gate never sees a
        half-recorded state."""
        stopped = future.cancelled()
        error: BaseException | None = None
        if not stopped:
            try:
                size, sha256 = future.result()
            except Cancelled:
                stopped = True
            except BaseException as exc:
                error = exc
        with self._lock:
            render = self._running.pop(name)
            if stopped:  # nothing written; a request that still wants it starts it again
                log.info("render of %s stopped", name)
            elif error is not None:
                log.warning("render of %s failed: %s", name, error)
                self._failed.remember(name, (f"{type(error).__name__}: {error}", render.job.spec))
            else:
                self._files.remember(name, (size, sha256))
                self._finished.remember(name, self.clock.now())
                if render.waiting:
                    self._uncollected[name] = set(render.waiting)
            render.claim.release()
            keep = self._protected()
        evicted = self.cache.evict(keep) if error is None and not stopped else []
        with self._lock:
            for gone in evicted:
                self._files.pop(gone, None)
            self._settled.notify_all()

    def _protected(self) -> set[str]:
        """Names eviction must keep: renders in flight, made and not yet collected, or being downloaded."""
        return set(self._running) | set(self._uncollected) | set(self._serving)

    # -- stopping ------------------------------------------------------------------------------

    def forget(self, request_id: str) -> None:
        """A request no longer wants its render (cancelled, or completed otherwise): a render no request of
        this process waits for any more is stopped (no frame is made after this, no file is written)."""
        abandoned = []
        with self._lock:
            for name in [name for name, waiting in self._uncollected.items() if request_id in waiting]:
                self._uncollected[name].discard(request_id)
                if not self._uncollected[name]:
                    del self._uncollected[name]
            for render in self._running.values():
                if request_id in render.waiting:
                    render.waiting.discard(request_id)
                    if not render.waiting:
                        abandoned.append(render)
        _stop(abandoned)

    def stop_all(self) -> None:
        """Stop every render in flight; when this returns none of them writes a file (`reset`, shutdown)."""
        with self._lock:
            running = list(self._running.values())
            self._uncollected.clear()
        _stop(running)

    def close(self) -> None:
        """Server shutdown: stop every render and start no new one (requests stay IN_PROGRESS in the store)."""
        self._closed = True
        self.stop_all()

    def _fallback(self, request: Request, spec: ClipSpec | None, why: str) -> Outcome:
        """The fixture clip's outcome for a request whose render cannot be made."""
        log.warning("request %s gets a fixture clip: %s", request.request_id, why)
        video = request.outcome.body["video"]
        url = str(video["url"])
        base, _, rest = url.partition(MEDIA_PREFIX)
        query = rest.partition("?")[2]
        if spec is None:
            endpoint = self.catalog.get(request.endpoint_id)
            if endpoint is None:
                return Outcome.failure(RequestError("internal_error", f"unknown endpoint {request.endpoint_id}", 500))
            spec = clip_for(endpoint, self.inputs(endpoint, request.input), None)
        try:
            clip = self.media.clip(spec)
        except LookupError as exc:
            return Outcome.failure(RequestError("internal_error", str(exc), 500))
        fixture = dict(self.media.file_object(clip, base))
        if query:
            fixture["url"] += "?" + query
        return Outcome(200, {**request.outcome.body, "video": fixture}, request.outcome.headers)

    # -- serving -------------------------------------------------------------------------------

    def served(self, name: str) -> tuple[Path, int, str] | None:
        """(path, size in bytes, SHA-256 hex) of a rendered file, marked as used; None when there is none."""
        path = self.cache.get(name)
        if path is None:
            return None
        size = path.stat().st_size
        with self._lock:
            known = self._files.get(name)
        if known is None or known[0] != size:  # rendered by another process, or before a restart
            known = (size, hashlib.sha256(path.read_bytes()).hexdigest())
            with self._lock:
                self._files.remember(name, known)
        return path, size, known[1]

    def hold(self, name: str) -> Callable[[], None]:
        """Keep `name` from eviction while a download of it runs; returns the function that lets it go."""
        with self._lock:
            self._serving[name] += 1
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                self._serving[name] -= 1
                if self._serving[name] <= 0:
                    del self._serving[name]

        return release

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no render of this emulator is running (at most `timeout` seconds); True if none is.

        A render counts as running until its outcome is recorded, so a status read after `wait` sees it done.
        """
        with self._settled:
            return self._settled.wait_for(lambda: not self._running, timeout)

    def reset(self) -> None:
        """Stop every render in flight (no file of theirs is written after this) and forget what this process
        remembers of finished renders; files on disk stay (a content-keyed cache)."""
        self.stop_all()
        with self._lock:
            self._finished.clear()
            self._failed.clear()
            self._held.clear()


def _stop(renders: Sequence[_Render]) -> None:
    """Stop `renders` (outside the renderer's lock: cancelling a future runs its done callback at once)."""
    for render in renders:
        render.stop.stop()
        if render.future is not None:
            render.future.cancel()  # one still waiting for a render thread never starts


def _with_size(outcome: Outcome, size: int) -> Outcome:
    video = {**outcome.body["video"], "file_size": size}
    return Outcome(outcome.status_code, {**outcome.body, "video": video}, outcome.headers)
