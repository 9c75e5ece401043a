"""The runner model through an unmodified fal_client 1.0.3 and a real `fal-emulator serve --concurrency 1`.

The server runs `timed:0,30` (a request may start at once and runs 30 s) on a frozen virtual clock that
each test advances through the control plane, so every state below is exact, with no waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fal_emulator.control import EmulatorControl
from fal_emulator.testing import EmulatorProcess

ENDPOINT = "fal-ai/veo3/image-to-video"
ARGS = {"prompt": "A lego chef cooks eggs", "image_url": "https://example.com/chef.png"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    args = ("--concurrency", "1")
    with EmulatorProcess(tmp_path_factory.mktemp("state"), policy="timed:0,30", extra_args=args) as process:
        yield process


@pytest.fixture
def control(server: EmulatorProcess) -> Iterator[EmulatorControl]:
    assert server.listening is not None
    with EmulatorControl(server.listening.http_url) as control:
        control.reset()
        control.freeze()
        yield control


def test_with_one_runner_the_second_request_stays_in_queue_until_the_first_completes(
    fal: Any, control: EmulatorControl
) -> None:
    first, second = fal.submit(ENDPOINT, arguments=ARGS), fal.submit(ENDPOINT, arguments=ARGS)
    assert isinstance(first.status(), fal.InProgress)
    assert second.status() == fal.Queued(position=0)
    control.advance(29.9)
    assert second.status() == fal.Queued(position=0)
    control.advance(0.1)
    assert isinstance(first.status(), fal.Completed)
    assert isinstance(second.status(), fal.InProgress)
    assert control.request(second.request_id)["started_at"] == control.request(first.request_id)["completed_at"]


def test_a_low_priority_request_waits_behind_normal_ones(fal: Any, control: EmulatorControl) -> None:
    busy = fal.submit(ENDPOINT, arguments=ARGS)
    low = fal.submit(ENDPOINT, arguments=ARGS, priority="low")
    normal = fal.submit(ENDPOINT, arguments=ARGS, priority="normal")
    assert (normal.status(), low.status()) == (fal.Queued(position=0), fal.Queued(position=1))
    control.advance(30)
    assert isinstance(busy.status(), fal.Completed) and isinstance(normal.status(), fal.InProgress)
    assert low.status() == fal.Queued(position=0)
    control.advance(30)
    assert isinstance(low.status(), fal.InProgress)
    assert control.request(low.request_id)["priority"] == "low"


def test_an_invalid_priority_gets_a_request_error(fal: Any, control: EmulatorControl) -> None:
    with pytest.raises(fal.FalClientHTTPError) as caught:  # fal_client checks `priority=`; a header is sent as is
        fal.submit(ENDPOINT, arguments=ARGS, headers={"X-Fal-Queue-Priority": "urgent"})
    assert caught.value.status_code == 400
    assert caught.value.error_type == "bad_request"
    assert "X-Fal-Queue-Priority" in caught.value.message
    assert control.requests() == []


def test_the_control_plane_sets_the_runners_and_reset_puts_them_back(fal: Any, control: EmulatorControl) -> None:
    assert control.concurrency() == {"concurrency": 1, "running": 0}
    control.set_concurrency(2)
    handles = [fal.submit(ENDPOINT, arguments=ARGS) for _ in range(3)]
    assert [type(handle.status()).__name__ for handle in handles] == ["InProgress", "InProgress", "Queued"]
    assert control.concurrency() == {"concurrency": 2, "running": 2}
    control.set_concurrency(None)
    assert isinstance(handles[2].status(), fal.InProgress)
    control.reset()
    assert control.concurrency() == {"concurrency": 1, "running": 0}


def test_a_result_is_gone_an_hour_after_completion(fal: Any, control: EmulatorControl) -> None:
    handle = fal.submit(ENDPOINT, arguments=ARGS)
    control.advance(30 + 3599)
    assert handle.get()["video"]["content_type"] == "video/mp4"
    control.advance(1)
    for call in (handle.get, handle.status):
        with pytest.raises(fal.FalClientHTTPError) as caught:
            call()
        assert caught.value.status_code == 404


def test_a_direct_run_while_every_runner_is_busy_is_answered_429(
    fal: Any, server: EmulatorProcess, control: EmulatorControl
) -> None:
    assert server.listening is not None
    fal.submit(ENDPOINT, arguments=ARGS)  # takes the one runner
    answer = httpx.post(f"{server.listening.http_url}/run/{ENDPOINT}", json=ARGS, headers={"Authorization": "Key k"})
    assert answer.status_code == 429
    assert answer.headers["X-Fal-Needs-Retry"] == "1"
    assert answer.json()["error_type"] == "concurrent_requests_limit"
    assert len(control.requests()) == 1
