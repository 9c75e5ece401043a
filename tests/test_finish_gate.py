"""`Queue.finish_gate`: a runner's output that takes time holds its request IN_PROGRESS, whatever the policy."""

from __future__ import annotations

from fal_emulator.clock import VirtualClock
from fal_emulator.errors import client_cancelled
from fal_emulator.ids import IdSource
from fal_emulator.queue import Outcome, Policy, Queue, Request, Status
from fal_emulator.store import MemoryStore

PLANNED = Outcome.success({"video": {"url": "http://x/files/a.mp4", "file_size": 0}})
DONE = Outcome.success({"video": {"url": "http://x/files/a.mp4", "file_size": 1234}})
START = 1_700_000_000.0


class Gate:
    """The output is ready once `ready_at` is set (a clock time); records every call."""

    def __init__(self) -> None:
        self.ready_at: float | None = None
        self.calls: list[tuple[Status, float]] = []

    def __call__(self, request: Request, now: float) -> tuple[Outcome, float] | None:
        self.calls.append((request.status, now))
        return None if self.ready_at is None else (DONE, self.ready_at)


def queue(policy: str) -> tuple[Queue, VirtualClock, Gate]:
    clock = VirtualClock(start=START, frozen=True)
    made = Queue(MemoryStore(), clock, IdSource(1), Policy.parse(policy))
    gate = made.finish_gate = Gate()
    return made, clock, gate


def test_an_instant_request_waits_for_its_output_then_completes_when_it_was_ready() -> None:
    made, clock, gate = queue("instant")
    request_id = made.submit("fal-ai/veo3/image-to-video", "fal-ai/veo3", {}, PLANNED).request_id
    assert set(gate.calls) == {(Status.IN_PROGRESS, START)}  # consulted as it starts: the runner begins its work
    clock.advance(5.0)
    assert made.status(request_id).status is Status.IN_PROGRESS
    gate.ready_at = START + 3.0
    clock.advance(5.0)
    view = made.status(request_id)
    assert view.status is Status.COMPLETED and view.metrics == {"inference_time": 3.0}
    assert made.result(request_id) == DONE  # the outcome the gate filled in


def test_a_timed_request_finishes_at_its_policy_time_when_the_output_was_ready_before() -> None:
    made, clock, gate = queue("timed:1,2")
    gate.ready_at = 0.0
    request_id = made.submit("fal-ai/veo3/image-to-video", "fal-ai/veo3", {}, PLANNED).request_id
    clock.advance(10.0)
    view = made.status(request_id)
    assert view.status is Status.COMPLETED and view.metrics == {"inference_time": 2.0}


def test_step_and_complete_finish_as_soon_as_the_output_exists_and_failures_are_not_held() -> None:
    made, clock, gate = queue("manual")
    request_id = made.submit("fal-ai/veo3/image-to-video", "fal-ai/veo3", {}, PLANNED).request_id
    assert made.step(request_id).status is Status.IN_PROGRESS
    assert made.step(request_id).status is Status.IN_PROGRESS  # no output yet
    assert made.complete_now(request_id).status is Status.IN_PROGRESS
    gate.ready_at = START
    assert made.status(request_id).status is Status.COMPLETED  # the forced finish was kept
    failing = made.submit("fal-ai/veo3/image-to-video", "fal-ai/veo3", {}, PLANNED).request_id
    gate.ready_at = None
    failed = made.complete_now(failing, Outcome.failure(client_cancelled()))
    assert failed.status is Status.COMPLETED and failed.error_type == "client_cancelled"
