from __future__ import annotations

import pytest

from fal_emulator.clock import VirtualClock, isoformat


class FakeReal:
    """A controllable stand-in for time.monotonic."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_virtual_clock_follows_real_time_at_its_scale() -> None:
    real = FakeReal()
    clock = VirtualClock(start=1000.0, scale=10.0, real=real)
    real.t += 2.0
    assert clock.now() == pytest.approx(1020.0)


def test_advance_moves_time_forward_instantly() -> None:
    real = FakeReal()
    clock = VirtualClock(start=1000.0, real=real)
    assert clock.advance(90.0) == pytest.approx(1090.0)
    real.t += 1.0
    assert clock.now() == pytest.approx(1091.0)


def test_frozen_clock_stands_still_until_advanced_or_unfrozen() -> None:
    real = FakeReal()
    clock = VirtualClock(start=1000.0, real=real)
    clock.freeze()
    real.t += 50.0
    assert clock.now() == 1000.0
    clock.advance(5.0)
    assert clock.now() == 1005.0
    clock.unfreeze()
    real.t += 1.0
    assert clock.now() == pytest.approx(1006.0)


def test_rescaling_keeps_the_time_reached_so_far() -> None:
    real = FakeReal()
    clock = VirtualClock(start=0.0, real=real)
    real.t += 10.0
    clock.set_scale(60.0)
    real.t += 1.0
    assert clock.now() == pytest.approx(70.0)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_scale_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        VirtualClock(scale=bad)
    with pytest.raises(ValueError, match="scale"):
        VirtualClock().set_scale(bad)


def test_time_never_moves_backwards() -> None:
    with pytest.raises(ValueError, match="forward"):
        VirtualClock().advance(-1.0)


def test_isoformat_is_fal_log_timestamp_form() -> None:
    assert isoformat(1771324201.123) == "2026-02-17T10:30:01.123Z"


def test_unfreezing_a_running_clock_keeps_its_time() -> None:
    real = FakeReal()
    clock = VirtualClock(start=1000.0, real=real)
    real.t += 5.0
    clock.unfreeze()
    assert clock.now() == pytest.approx(1005.0)


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), 1e20])
def test_time_cannot_jump_out_of_printable_range(seconds: float) -> None:
    with pytest.raises(ValueError):
        VirtualClock().advance(seconds)
