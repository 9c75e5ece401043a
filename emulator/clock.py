"""Time for the emulator: every timestamp and every timed transition reads an injected clock.

`VirtualClock` is the one the server uses. It runs at `scale` times real time (1.0 by default) and
can be advanced, frozen and re-scaled, so a test or a demo controls time instead of waiting:

    clock = VirtualClock(start=1_700_000_000.0)
    clock.freeze(); clock.advance(90.0)      # 90 virtual seconds pass, instantly
    clock.set_scale(60.0); clock.unfreeze()  # one real second is now one virtual minute

Times are POSIX seconds (float).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """The current time in POSIX seconds."""
        ...


class VirtualClock:
    """A clock that follows a real monotonic source at `scale`, and can be frozen or advanced."""

    def __init__(
        self,
        start: float | None = None,
        *,
        scale: float = 1.0,
        frozen: bool = False,
        real: Callable[[], float] = time.monotonic,
    ) -> None:
        if scale <= 0:
            raise ValueError(f"clock scale must be > 0, got {scale}")
        self._real = real
        self._anchor_real = real()
        self._anchor = time.time() if start is None else start
        self._scale = scale
        self._frozen = frozen

    def now(self) -> float:
        if self._frozen:
            return self._anchor
        return self._anchor + (self._real() - self._anchor_real) * self._scale

    def _rebase(self) -> None:
        self._anchor = self.now()
        self._anchor_real = self._real()

    @property
    def scale(self) -> float:
        return self._scale

    @property
    def frozen(self) -> bool:
        return self._frozen

    def advance(self, seconds: float) -> float:
        """Move time forward by `seconds` (>= 0); returns the new time. Raises ValueError if negative."""
        if seconds < 0:
            raise ValueError(f"time only moves forward; cannot advance by {seconds}")
        self._rebase()
        self._anchor += seconds
        return self._anchor

    def freeze(self) -> None:
        self._rebase()
        self._frozen = True

    def unfreeze(self) -> None:
        self._anchor_real = self._real()
        self._frozen = False

    def set_scale(self, scale: float) -> None:
        """Virtual seconds per real second from now on. Raises ValueError unless scale > 0."""
        if scale <= 0:
            raise ValueError(f"clock scale must be > 0, got {scale}")
        self._rebase()
        self._scale = scale


def isoformat(seconds: float) -> str:
    """POSIX seconds -> `2026-02-17T10:30:01.123Z`, the timestamp form of fal's queue logs."""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
