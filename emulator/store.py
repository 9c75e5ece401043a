"""The in-memory request store: requests by id, the queue order per app, and timed wake-ups.

Queue positions must not cost more as requests pile up, so each app keeps its queued requests'
submit sequence numbers in a sorted list (`queue_position` is a bisection, O(log n)), and requests
that leave the queue by time (timed policies, start deadlines) are in a heap of wake-up times, so
bringing the queue up to date touches only the requests whose time has come.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterator

from sortedcontainers import SortedList

from fal_emulator.queue import Request, Status


class MemoryStore:
    """Holds every request for the life of the process; `reset()` forgets them all."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._requests: dict[str, Request] = {}
        self._queued: dict[str, SortedList] = {}  # app id -> sequence numbers of its queued requests
        self._wakeups: list[tuple[float, int, str]] = []  # (time, sequence, request id), a heap
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
        self._queued.setdefault(request.app_id, SortedList()).add(request.sequence)

    def get(self, request_id: str) -> Request | None:
        return self._requests.get(request_id)

    def all(self) -> list[Request]:
        """Every request, oldest first."""
        return list(self._requests.values())

    def save(self, request: Request) -> None:
        if request.status is not Status.IN_QUEUE:
            queued = self._queued.get(request.app_id)
            if queued is not None:
                queued.discard(request.sequence)

    def schedule(self, request: Request, at: float) -> None:
        """Look at `request` again once the clock reaches `at` (POSIX seconds)."""
        heapq.heappush(self._wakeups, (at, request.sequence, request.request_id))

    def due(self, now: float) -> list[Request]:
        """Requests whose wake-up time is at or before `now`, earliest first; each is returned once."""
        found = []
        while self._wakeups and self._wakeups[0][0] <= now:
            _, _, request_id = heapq.heappop(self._wakeups)
            request = self._requests.get(request_id)
            if request is not None:
                found.append(request)
        return found

    def queue_position(self, request: Request) -> int:
        """How many requests of the same app were queued before `request` and still are."""
        queued = self._queued.get(request.app_id)
        return 0 if queued is None else int(queued.bisect_left(request.sequence))

    def queued_count(self, app_id: str) -> int:
        return len(self._queued.get(app_id, ()))

    def __len__(self) -> int:
        return len(self._requests)
