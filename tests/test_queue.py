from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fal_emulator.clock import VirtualClock
from fal_emulator.errors import RequestNotFound, ResultNotReady
from fal_emulator.ids import IdSource
from fal_emulator.queue import (
    PRESETS,
    TRANSITIONS,
    InvalidTransition,
    Outcome,
    Policy,
    Queue,
    Status,
    next_status,
)
from tests.stores import STORES, make_store

OUTPUT = {"video": {"url": "http://x/files/a.mp4"}}
SCRIPT = [(0.0, "loading"), (0.5, "halfway"), (0.9, "encoding")]


MakeQueue = Callable[[str], tuple[Queue, VirtualClock]]


@pytest.fixture(params=STORES)
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> MakeQueue:
    """Queues over each store, on a frozen clock, with seeded ids."""
    made: list[int] = []

    def make(policy: str) -> tuple[Queue, VirtualClock]:
        made.append(1)
        store = make_store(request.param, tmp_path / f"{len(made)}", request)
        clock = VirtualClock(start=1_700_000_000.0, frozen=True)
        return Queue(store, clock, IdSource(1), Policy.parse(policy)), clock

    return make


def submit(queue: Queue, app: str = "fal-ai/veo3") -> str:
    view = queue.submit(f"{app}/image-to-video", app, {"prompt": "p"}, Outcome.success(OUTPUT), script=SCRIPT)
    return view.request_id


def test_transitions_are_declared_once_as_data() -> None:
    assert next_status(Status.IN_QUEUE, "start") is Status.IN_PROGRESS
    assert next_status(Status.IN_PROGRESS, "finish") is Status.COMPLETED
    assert next_status(Status.IN_QUEUE, "cancel") is Status.COMPLETED
    assert all(source is not Status.COMPLETED for source, _ in TRANSITIONS)
    with pytest.raises(InvalidTransition):
        next_status(Status.COMPLETED, "start")


def test_ids_are_deterministic_for_a_seed(make_queue: MakeQueue) -> None:
    first, _ = make_queue("manual")
    second, _ = make_queue("manual")
    assert [submit(first) for _ in range(3)] == [submit(second) for _ in range(3)]


def test_polls_policy_shows_each_state_for_n_polls(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("polls:2")
    request_id = submit(queue)
    seen = [queue.status(request_id).status for _ in range(5)]
    assert seen == [Status.IN_QUEUE, Status.IN_QUEUE, Status.IN_PROGRESS, Status.IN_PROGRESS, Status.COMPLETED]


def test_reading_without_polling_does_not_move_a_polls_request(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("polls:1")
    request_id = submit(queue)
    for _ in range(3):
        assert queue.status(request_id, poll=False).status is Status.IN_QUEUE


def test_timed_policy_follows_the_injected_clock(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:2,10")
    request_id = submit(queue)
    assert queue.status(request_id).status is Status.IN_QUEUE
    clock.advance(2.0)
    assert queue.status(request_id).status is Status.IN_PROGRESS
    clock.advance(9.9)
    assert queue.status(request_id).status is Status.IN_PROGRESS
    clock.advance(0.1)
    view = queue.status(request_id)
    assert view.status is Status.COMPLETED
    assert view.metrics == {"inference_time": 10.0}


def test_immediate_policy_answers_submit_in_queue_then_is_completed(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("instant")
    view = queue.submit("fal-ai/veo3", "fal-ai/veo3", {}, Outcome.success(OUTPUT))
    assert view.status is Status.IN_QUEUE
    assert view.queue_position == 0
    assert queue.status(view.request_id).status is Status.COMPLETED
    assert queue.result(view.request_id) == Outcome.success(OUTPUT)


def test_manual_policy_moves_only_when_stepped(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("manual")
    request_id = submit(queue)
    clock.advance(3600.0)
    assert queue.status(request_id).status is Status.IN_QUEUE
    assert queue.step(request_id).status is Status.IN_PROGRESS
    assert queue.step(request_id).status is Status.COMPLETED
    with pytest.raises(InvalidTransition):
        queue.step(request_id)


def test_logs_are_revealed_while_in_progress_and_complete_at_the_end(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:0,10")
    request_id = submit(queue)
    clock.advance(1.0)
    assert [log["message"] for log in queue.status(request_id).logs] == ["loading"]
    clock.advance(5.0)
    assert [log["message"] for log in queue.status(request_id).logs] == ["loading", "halfway"]
    clock.advance(10.0)
    logs = queue.status(request_id).logs
    assert [log["message"] for log in logs] == ["loading", "halfway", "encoding", "Request completed."]
    assert logs[1] == {"message": "halfway", "level": "INFO", "source": "USER", "timestamp": "2023-11-14T22:13:25.000Z"}


def test_queue_position_counts_requests_ahead_in_the_same_app(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("manual")
    first, second, third = submit(queue), submit(queue), submit(queue)
    other_app = submit(queue, app="fal-ai/veo2")
    assert [queue.status(r).queue_position for r in (first, second, third)] == [0, 1, 2]
    assert queue.status(other_app).queue_position == 0
    queue.step(first)
    assert queue.status(third).queue_position == 1
    assert queue.status(first).queue_position is None


def test_queue_position_decreases_as_time_moves_requests_out_of_the_queue(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:5,5")
    first = submit(queue)
    clock.advance(1.0)
    second = submit(queue)
    assert queue.status(second).queue_position == 1
    clock.advance(4.0)
    assert queue.status(first).status is Status.IN_PROGRESS
    assert queue.status(second).queue_position == 0


def test_result_before_completion_is_not_ready(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("manual")
    request_id = submit(queue)
    with pytest.raises(ResultNotReady):
        queue.result(request_id)


def test_unknown_request_is_not_found(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("manual")
    for call in (queue.status, queue.result, queue.cancel, queue.step):
        with pytest.raises(RequestNotFound):
            call("00000000-0000-4000-8000-000000000000")


def test_request_cancelled_while_queued_never_runs(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:1,1")
    request_id = submit(queue)
    assert queue.cancel(request_id) == "CANCELLATION_REQUESTED"
    clock.advance(10.0)
    view = queue.status(request_id)
    assert view.status is Status.COMPLETED
    assert view.logs == [] and view.metrics == {}
    assert (view.error_type, view.error) == ("client_cancelled", "Request cancelled by the client.")
    assert queue.result(request_id).status_code == 499
    assert queue.cancel(request_id) == "ALREADY_COMPLETED"


def test_cancel_of_a_running_request_stops_it(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("manual")
    request_id = submit(queue)
    queue.step(request_id)
    assert queue.cancel(request_id) == "CANCELLATION_REQUESTED"
    view = queue.status(request_id)
    assert view.status is Status.COMPLETED and view.error_type == "client_cancelled"
    assert view.logs[-1]["message"] == "Request cancelled."


def test_cancel_after_completion_is_rejected(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("instant")
    request_id = submit(queue)
    assert queue.cancel(request_id) == "ALREADY_COMPLETED"
    assert queue.result(request_id).ok


def test_failed_outcome_shows_in_status_and_result(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("instant")
    failure = Outcome(504, {"detail": "Request timed out", "error_type": "request_timeout"})
    view = queue.submit("fal-ai/veo3", "fal-ai/veo3", {}, failure)
    done = queue.status(view.request_id)
    assert (done.error, done.error_type) == ("Request timed out", "request_timeout")
    assert queue.result(view.request_id) == failure


def test_realistic_preset_scales_run_time_with_seconds_of_video() -> None:
    policy = PRESETS["realistic"]
    assert policy.seconds_in(Status.IN_PROGRESS, 8) == 100.0
    assert policy.seconds_in(Status.IN_QUEUE, 8) == 5.0


@pytest.mark.parametrize("text", ["polls:0", "polls:x", "timed:1", "timed:-1,2", "sometimes"])
def test_policy_parse_rejects_unknown_forms(text: str) -> None:
    with pytest.raises(ValueError, match="progression policy"):
        Policy.parse(text)


@pytest.mark.parametrize("text", ["default", "instant", "manual", "realistic", "polls:3", "timed:0.5,2"])
def test_a_policy_describes_itself_as_parse_reads_it(text: str) -> None:
    assert Policy.parse(Policy.parse(text).describe()) == Policy.parse(text)
    assert Policy.parse(text).describe() == text
