"""The in-memory request store: one dict of requests and, per app id, the order of queued requests."""

from __future__ import annotations

from collections.abc import Iterator

from emulator.queue import Request, Status


class MemoryStore:
    """Holds every request for the life of the process; `reset()` forgets them all."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._requests: dict[str, Request] = {}
        self._queued: dict[str, dict[str, Request]] = {}  # app id -> queued requests in submit order
        self._sequence = 0

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def add(self, request: Request) -> None:
        self._requests[request.request_id] = request
        self._queued.setdefault(request.app_id, {})[request.request_id] = request

    def get(self, request_id: str) -> Request | None:
        return self._requests.get(request_id)

    def save(self, request: Request) -> None:
        if request.status is not Status.IN_QUEUE:
            self._queued.get(request.app_id, {}).pop(request.request_id, None)

    def all(self) -> list[Request]:
        """Every request, oldest first."""
        return list(self._requests.values())

    def queued_before(self, request: Request) -> Iterator[Request]:
        """Queued requests of the same app submitted before `request`, oldest first."""
        for other in list(self._queued.get(request.app_id, {}).values()):
            if other.sequence >= request.sequence:
                return
            yield other

    def __len__(self) -> int:
        return len(self._requests)
