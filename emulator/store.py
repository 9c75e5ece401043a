"""The store interface (`Store`, `Wakeup`), and the in-memory store: requests by id, the queue order per app,
ready requests, timed wake-ups.

Nothing may cost more as requests pile up, so every index is O(log n):
- each app's queued requests are a sorted list of their order keys (priority, then submit sequence):
  `queue_position` is a bisection;
- the ready requests of the account are a sorted list too: `first_ready` is its head;
- running requests are a set: `running_count` is its size;
- timed events (a request becomes ready, a run finishes, a start deadline, a retention expiry) are a heap
  of (time, kind, sequence, request id): bringing the queue up to date touches only what is due.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Literal, NamedTuple, Protocol

from sortedcontainers import SortedList

from fal_emulator.lifecycle import Request, Status, order_key
from fal_emulator.summary import Summary, SummaryQuery, Totals, page_of, summarize, totals_of

WakeupKind = Literal["finish", "ready", "deadline", "expire"]
# Events due at the same time play out in this order: a finishing run frees its runner before a request
# becomes ready, and a request that can start at its deadline starts.
WAKEUP_ORDER: Mapping[WakeupKind, int] = {"finish": 0, "ready": 1, "deadline": 2, "expire": 3}
WAKEUP_KINDS: Sequence[WakeupKind] = sorted(WAKEUP_ORDER, key=WAKEUP_ORDER.__getitem__)


class Wakeup(NamedTuple):
    """A timed event: at `at` (POSIX seconds) look at `request` again (None: gone, or its row is unreadable)."""

    at: float
    kind: WakeupKind
    request: Request | None


class Store(Protocol):
    """Where requests live: by id, in queue order per app, the ready ones in account order, the running
    count, and timed wake-ups. Every operation is O(log n) in the number of stored requests.

    Implementations: `fal_emulator.store.MemoryStore` (the default), `sqlite_store.SqliteStore`,
    `redis_store.RedisStore`. The queue calls `schedule` before the `save` that makes the event meaningful,
    so a store that writes each `save` atomically with the wake-ups scheduled before it stays consistent
    when its process dies between two writes. `read_idle` is a read without the store's lock: the request
    of `app_id` and its queue position (None unless queued), or None when it is unknown, of another app, or
    some event is due by `now` (then the queue takes the lock and plays the events out first).

    `summaries` and `totals` are what lists show (`fal_emulator.summary`): one page of request summaries, newest
    first, with how many match, and the counts over every stored request; neither decodes every request.
    """

    def add(self, request: Request) -> None: ...
    def get(self, request_id: str) -> Request | None: ...
    def all(self) -> list[Request]: ...
    def save(self, request: Request) -> None: ...
    def delete(self, request: Request) -> None: ...
    def next_sequence(self) -> int: ...
    def schedule(self, request: Request, at: float, kind: WakeupKind) -> None: ...
    def next_due(self, now: float) -> Wakeup | None: ...
    def first_ready(self) -> Request | None: ...
    def running_count(self) -> int: ...
    def queue_position(self, request: Request) -> int: ...
    def queued_count(self, app_id: str) -> int: ...
    def read_idle(self, request_id: str, app_id: str, now: float) -> tuple[Request, int | None] | None: ...
    def summaries(self, query: SummaryQuery, offset: int, limit: int | None) -> tuple[list[Summary], int]: ...
    def totals(self) -> Totals: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def reset(self) -> None: ...


class MemoryStore:
    """Holds every request for the life of the process; `reset()` forgets them all."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._requests: dict[str, Request] = {}
        self._queued: dict[str, SortedList] = {}  # app id -> order keys of its queued requests
        self._ready = SortedList()  # (order key, request id) of ready requests, account-wide
        self._running: set[str] = set()  # ids of IN_PROGRESS requests
        self._wakeups: list[tuple[float, int, int, str]] = []  # (time, kind, sequence, request id), a heap
        self._sequence = 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One process, one event loop: nothing to isolate."""
        yield

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def add(self, request: Request) -> None:
        self._requests[request.request_id] = request
        self.save(request)

    def get(self, request_id: str) -> Request | None:
        return self._requests.get(request_id)

    def all(self) -> list[Request]:
        """Every request, oldest first."""
        return list(self._requests.values())

    def save(self, request: Request) -> None:
        """Bring the indexes in line with the request's state (requests are held by reference)."""
        key = order_key(request)
        queued = self._queued.setdefault(request.app_id, SortedList())
        if request.status is Status.IN_QUEUE:
            if key not in queued:
                queued.add(key)
        else:
            queued.discard(key)
        entry = (key, request.request_id)
        if request.ready and request.status is Status.IN_QUEUE:
            if entry not in self._ready:
                self._ready.add(entry)
        else:
            self._ready.discard(entry)
        if request.status is Status.IN_PROGRESS:
            self._running.add(request.request_id)
        else:
            self._running.discard(request.request_id)

    def delete(self, request: Request) -> None:
        """Forget a request (its retention window is over), wherever it is indexed."""
        self._requests.pop(request.request_id, None)
        key = order_key(request)
        self._queued.get(request.app_id, SortedList()).discard(key)
        self._ready.discard((key, request.request_id))
        self._running.discard(request.request_id)

    def schedule(self, request: Request, at: float, kind: WakeupKind) -> None:
        """Look at `request` again once the clock reaches `at` (POSIX seconds)."""
        heapq.heappush(self._wakeups, (at, WAKEUP_ORDER[kind], request.sequence, request.request_id))

    def next_due(self, now: float) -> Wakeup | None:
        """The earliest event due at or before `now`, removed from the heap; None when nothing is due."""
        if not self._wakeups or self._wakeups[0][0] > now:
            return None
        at, kind, _, request_id = heapq.heappop(self._wakeups)
        return Wakeup(at, WAKEUP_KINDS[kind], self._requests.get(request_id))

    def first_ready(self) -> Request | None:
        """The ready request first in queue order (every normal before any low, then oldest)."""
        while self._ready:
            request = self._requests.get(self._ready[0][1])
            if request is not None:
                return request
            self._ready.pop(0)
        return None

    def running_count(self) -> int:
        return len(self._running)

    def queue_position(self, request: Request) -> int:
        """How many requests of the same app are queued ahead of `request` (in queue order)."""
        queued = self._queued.get(request.app_id)
        return 0 if queued is None else int(queued.bisect_left(order_key(request)))

    def queued_count(self, app_id: str) -> int:
        return len(self._queued.get(app_id, ()))

    def read_idle(self, request_id: str, app_id: str, now: float) -> tuple[Request, int | None] | None:
        """The request and its queue position, unless an event is due by `now` (see `Store`)."""
        request = self._requests.get(request_id)
        if request is None or request.app_id != app_id or (self._wakeups and self._wakeups[0][0] <= now):
            return None
        return request, self.queue_position(request) if request.status is Status.IN_QUEUE else None

    def summaries(self, query: SummaryQuery, offset: int, limit: int | None) -> tuple[list[Summary], int]:
        """The requests `query` matches, newest first, from `offset` (at most `limit`), and how many match: one
        pass over the requests (none without filters), summarizing only the page."""
        newest_first = reversed(self._requests.values())
        if query == SummaryQuery():
            end = None if limit is None else offset + limit
            return [summarize(request) for request in itertools.islice(newest_first, offset, end)], len(self._requests)
        return page_of(newest_first, query, offset, limit)

    def totals(self) -> Totals:
        """Counts over every request, in one pass."""
        return totals_of(self._requests.values())

    def __len__(self) -> int:
        return len(self._requests)
