"""The runner model: a concurrency limit, queue order by priority, time-ordered wake-ups, retention."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fal_emulator.clock import VirtualClock
from fal_emulator.errors import RequestNotFound
from fal_emulator.ids import IdSource
from fal_emulator.queue import Outcome, Policy, Queue, Retention, Status, Store
from tests.stores import STORES, make_store

OUTPUT = {"video": {"url": "http://x/files/a.mp4"}}
T0 = 1_700_000_000.0

MakeQueue = Callable[..., tuple[Queue, VirtualClock]]


@pytest.fixture(params=STORES)
def make_queue(request: pytest.FixtureRequest, tmp_path) -> MakeQueue:  # type: ignore[no-untyped-def]
    """Queues over each store, on a frozen clock, with seeded ids."""
    made: list[Store] = []

    def make(
        policy: str, concurrency: int | None = None, retention: Retention | None = None
    ) -> tuple[Queue, VirtualClock]:
        store = make_store(request.param, tmp_path / f"{len(made)}", request)
        made.append(store)
        clock = VirtualClock(start=T0, frozen=True)
        queue = Queue(store, clock, IdSource(1), Policy.parse(policy), concurrency=concurrency, retention=retention)
        return queue, clock

    return make


def submit(queue: Queue, app: str = "fal-ai/veo3", *, priority: str = "normal", outcome: Outcome | None = None,
           start_timeout: float | None = None) -> str:  # fmt: skip
    view = queue.submit(
        f"{app}/image-to-video", app, {"prompt": "p"}, outcome or Outcome.success(OUTPUT),
        priority=priority,  # type: ignore[arg-type]
        start_timeout=start_timeout,
    )  # fmt: skip
    return view.request_id


def states(queue: Queue, *request_ids: str) -> list[str]:
    return [queue.status(request_id, poll=False).status.value for request_id in request_ids]


def started(queue: Queue, request_id: str) -> float | None:
    request = queue.store.get(request_id)
    assert request is not None
    return None if request.started_at is None else request.started_at - T0


def test_with_one_runner_the_second_request_waits_until_the_first_completes(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:0,10", concurrency=1)
    first, second = submit(queue), submit(queue)
    assert states(queue, first, second) == ["IN_PROGRESS", "IN_QUEUE"]
    assert queue.status(second).queue_position == 0
    clock.advance(9.999)
    assert states(queue, first, second) == ["IN_PROGRESS", "IN_QUEUE"]
    clock.advance(0.001)
    assert states(queue, first, second) == ["COMPLETED", "IN_PROGRESS"]
    assert started(queue, second) == 10.0


def test_advance_plays_the_queue_out_exactly_in_time_order(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:1,10", concurrency=2)
    ids = [submit(queue) for _ in range(5)]
    clock.advance(100.0)  # one read then plays out every start and finish on the way, at its own time
    assert states(queue, *ids) == ["COMPLETED"] * 5
    assert [started(queue, request_id) for request_id in ids] == [1.0, 1.0, 11.0, 11.0, 21.0]
    completed = [queue.store.get(request_id).completed_at for request_id in ids]  # type: ignore[union-attr]
    assert [at - T0 for at in completed if at is not None] == [11.0, 11.0, 21.0, 21.0, 31.0]


def test_a_frozen_clock_freezes_the_runners(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("timed:0,10", concurrency=1)
    first, second = submit(queue), submit(queue)
    for _ in range(50):
        assert states(queue, first, second) == ["IN_PROGRESS", "IN_QUEUE"]


def test_low_priority_waits_behind_every_normal_request(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:0,10", concurrency=1)
    busy = submit(queue)
    low = submit(queue, priority="low")
    normal, later = submit(queue), submit(queue)
    positions = [queue.status(request_id).queue_position for request_id in (normal, later, low)]
    assert positions == [0, 1, 2]  # the low request counts the normal ones submitted after it
    clock.advance(10.0)
    assert states(queue, busy, normal, later, low) == ["COMPLETED", "IN_PROGRESS", "IN_QUEUE", "IN_QUEUE"]
    assert queue.status(low).queue_position == 1
    clock.advance(20.0)
    assert states(queue, later, low) == ["COMPLETED", "IN_PROGRESS"]
    assert started(queue, low) == 30.0


def test_priority_and_positions_are_per_app_but_the_runners_are_the_accounts(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:0,10", concurrency=1)
    busy = submit(queue, "fal-ai/veo3")
    other = submit(queue, "fal-ai/veo2")
    assert states(queue, busy, other) == ["IN_PROGRESS", "IN_QUEUE"]
    assert queue.status(other).queue_position == 0
    clock.advance(10.0)
    assert states(queue, other) == ["IN_PROGRESS"]


def test_a_cancelled_run_frees_its_runner_at_once(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:0,10", concurrency=1)
    first, second = submit(queue), submit(queue)
    clock.advance(3.0)
    assert queue.cancel(first) == "CANCELLATION_REQUESTED"
    assert states(queue, second) == ["IN_PROGRESS"]
    assert started(queue, second) == 3.0


def test_a_cancelled_queued_request_leaves_the_queue(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:0,10", concurrency=1)
    busy, first, second = submit(queue), submit(queue), submit(queue)
    queue.cancel(first)
    assert queue.status(second).queue_position == 0
    clock.advance(10.0)
    assert states(queue, busy, first, second) == ["COMPLETED", "COMPLETED", "IN_PROGRESS"]


def test_a_start_deadline_passes_while_every_runner_is_busy(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:0,10", concurrency=1)
    busy = submit(queue)
    impatient = submit(queue, start_timeout=5.0)
    patient = submit(queue, start_timeout=10.0)  # a runner frees exactly at its deadline: it starts
    clock.advance(60.0)
    view = queue.status(impatient)
    assert (view.status, view.error_type) == (Status.COMPLETED, "request_timeout")
    assert queue.store.get(impatient).completed_at == T0 + 5.0  # type: ignore[union-attr]
    assert started(queue, patient) == 10.0
    assert states(queue, busy, patient) == ["COMPLETED", "COMPLETED"]


def test_polled_requests_wait_for_a_runner_too(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("polls:1", concurrency=1)
    first, second = submit(queue), submit(queue)
    queue.status(first)
    queue.status(second)
    assert states(queue, first, second) == ["IN_PROGRESS", "IN_QUEUE"]  # second is ready: it waits
    queue.status(first)
    assert states(queue, first, second) == ["COMPLETED", "IN_PROGRESS"]


def test_instant_requests_wait_for_a_runner_and_complete_as_they_start(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("manual", concurrency=1)
    busy = submit(queue)
    queue.step(busy)
    queue.policy = Policy.parse("instant")
    waiting = submit(queue)
    assert states(queue, waiting) == ["IN_QUEUE"]
    clock.advance(4.0)
    queue.step(busy)
    assert states(queue, busy, waiting) == ["COMPLETED", "COMPLETED"]
    assert started(queue, waiting) == 4.0


def test_step_starts_a_request_even_when_every_runner_is_busy(make_queue: MakeQueue) -> None:
    queue, _ = make_queue("manual", concurrency=1)
    first, second = submit(queue), submit(queue)
    queue.step(first)
    assert queue.step(second).status is Status.IN_PROGRESS
    assert queue.store.running_count() == 2


def test_raising_the_limit_starts_waiting_requests(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:0,10", concurrency=1)
    ids = [submit(queue) for _ in range(3)]
    clock.advance(2.0)
    queue.concurrency = 3
    assert states(queue, *ids) == ["IN_PROGRESS"] * 3
    assert started(queue, ids[2]) == 2.0
    queue.concurrency = None
    assert [states(queue, submit(queue))[0] for _ in range(5)] == ["IN_PROGRESS"] * 5


def test_a_changed_policy_takes_effect_from_now(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("manual", concurrency=1)
    first, second = submit(queue), submit(queue)
    clock.advance(5.0)
    queue.set_policy(first, Policy.parse("timed:0,10"))
    assert states(queue, first, second) == ["IN_PROGRESS", "IN_QUEUE"]
    queue.set_policy(second, Policy.parse("instant"))  # ready now; it waits for the runner
    clock.advance(10.0)
    assert states(queue, first, second) == ["COMPLETED", "COMPLETED"]
    assert started(queue, second) == 15.0


def test_an_invalid_priority_is_refused() -> None:
    queue = Queue(make_store("memory"), VirtualClock(start=T0, frozen=True), IdSource(1), Policy.parse("manual"))
    with pytest.raises(ValueError, match="priority"):
        submit(queue, priority="urgent")


def test_a_concurrency_below_one_is_refused() -> None:
    queue = Queue(make_store("memory"), VirtualClock(start=T0, frozen=True), IdSource(1), Policy.parse("manual"))
    with pytest.raises(ValueError, match="concurrency"):
        queue.concurrency = 0


# -- retention ------------------------------------------------------------------------------------


def test_results_are_forgotten_an_hour_after_completion(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("instant")
    request_id = submit(queue)
    clock.advance(3599.0)
    assert queue.result(request_id).ok
    clock.advance(1.0)
    for call in (queue.result, queue.status, queue.cancel):
        with pytest.raises(RequestNotFound):
            call(request_id)
    assert queue.store.get(request_id) is None


def test_results_of_10_kb_or_more_are_forgotten_after_6_minutes(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("instant")
    large = submit(queue, outcome=Outcome.success({"text": "x" * 10_240}))
    small = submit(queue)
    clock.advance(359.0)
    assert queue.result(large).ok
    clock.advance(1.0)
    with pytest.raises(RequestNotFound):
        queue.result(large)
    assert queue.result(small).ok


def test_retention_counts_from_completion_on_the_virtual_clock(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:0,600", retention=Retention(30.0, 30.0))
    request_id = submit(queue)
    clock.advance(629.0)
    assert queue.result(request_id).ok
    clock.advance(1.0)
    with pytest.raises(RequestNotFound):
        queue.status(request_id)


def test_forever_keeps_every_result(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("instant", retention=Retention.parse("forever"))
    request_id = submit(queue)
    clock.advance(30 * 86_400.0)
    assert queue.result(request_id).ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [("fal", Retention(3600.0, 360.0)), ("forever", Retention(None, None)), ("90", Retention(90.0, 90.0))],
)
def test_retention_parses_and_describes_itself(text: str, expected: Retention) -> None:
    assert Retention.parse(text) == expected
    assert Retention.parse(expected.describe()) == expected


@pytest.mark.parametrize("text", ["0", "-1", "soon", "inf", "nan", ""])
def test_retention_rejects_other_forms(text: str) -> None:
    with pytest.raises(ValueError, match="retention"):
        Retention.parse(text)


def test_a_read_without_the_lock_is_taken_only_when_nothing_is_due(make_queue: MakeQueue) -> None:
    queue, clock = make_queue("timed:1,10", concurrency=1)
    first, second = submit(queue), submit(queue)
    app = "fal-ai/veo3"
    idle = queue.store.read_idle(second, app, clock.now())
    assert idle is not None and idle[0].status is Status.IN_QUEUE and idle[1] == 1
    assert queue.store.read_idle(second, "fal-ai/veo2", clock.now()) is None  # another app's id
    clock.advance(1.0)
    assert queue.store.read_idle(second, app, clock.now()) is None  # both become ready now: the queue must play it
    views = [queue.status(request_id, app_id=app) for request_id in (first, second)]
    assert [(v.status, v.queue_position) for v in views] == [(Status.IN_PROGRESS, None), (Status.IN_QUEUE, 0)]
    idle = queue.store.read_idle(second, app, clock.now())
    assert idle is not None and idle[1] == 0
    clock.advance(10.0)
    assert queue.status(second, app_id=app).status is Status.IN_PROGRESS
    assert started(queue, second) == 11.0


def test_a_request_held_by_the_finish_gate_keeps_its_runner(make_queue: MakeQueue) -> None:
    """The runner's output takes time (the renderer): its request stays IN_PROGRESS, holding the one
    runner, until the gate says the output exists; then the next request starts."""
    queue, clock = make_queue("timed:0,10", concurrency=1)
    ready: list[float] = []
    queue.finish_gate = lambda request, now: (request.outcome, ready[0]) if ready else None
    first, second = submit(queue), submit(queue)
    clock.advance(30.0)
    assert states(queue, first, second) == ["IN_PROGRESS", "IN_QUEUE"]
    ready.append(T0 + 27.0)  # the output was done at 27 s
    clock.advance(2.0)
    assert states(queue, first, second) == ["COMPLETED", "IN_PROGRESS"]
    assert queue.status(first).metrics == {"inference_time": 27.0}
    assert started(queue, second) == 27.0
