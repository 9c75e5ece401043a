"""Time for the emulator: every timestamp and every timed transition reads an injected clock.

`VirtualClock` is the one the server uses. It runs at `scale` times real time (1.0 by default) and
can be advanced, frozen and re-scaled, so a test or a demo controls time instead of waiting:

    clock = VirtualClock(start=1_700_000_000.0)
    clock.freeze(); clock.advance(90.0)      # 90 virtual seconds pass, instantly
    clock.set_scale(60.0); clock.unfreeze()  # one real second is now one virtual minute

Times are POSIX seconds (float).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

LATEST = 253_402_300_000.0  # POSIX seconds late in the year 9999: timestamps must stay printable
MAX_SCALE = 1e6


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
        if not 0 < scale <= MAX_SCALE:
            raise ValueError(f"clock scale must be > 0 and <= {MAX_SCALE:g}, got {scale}")
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
        """Move time forward by `seconds` (>= 0); returns the new time.

        Raises ValueError for a negative or non-finite step, or one that passes the year 9999.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"time only moves forward by a finite amount; cannot advance by {seconds}")
        if self.now() + seconds > LATEST:
            raise ValueError(f"advancing by {seconds} s would pass the year 9999")
        self._rebase()
        self._anchor += seconds
        return self._anchor

    def freeze(self) -> None:
        self._rebase()
        self._frozen = True

    def unfreeze(self) -> None:
        if self._frozen:  # a running clock keeps the time it reached
            self._anchor_real = self._real()
            self._frozen = False

    def set_scale(self, scale: float) -> None:
        """Virtual seconds per real second from now on. Raises ValueError unless 0 < scale <= 1e6."""
        if not 0 < scale <= MAX_SCALE:
            raise ValueError(f"clock scale must be > 0 and <= {MAX_SCALE:g}, got {scale}")
        self._rebase()
        self._scale = scale


def isoformat(seconds: float) -> str:
    """POSIX seconds -> `2026-02-17T10:30:01.123Z`, the timestamp form of fal's queue logs."""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
