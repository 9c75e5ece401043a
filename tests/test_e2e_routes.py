"""fal_client 1.0.3 on every route over real sockets: its retry rules on status polls, result fetches and cancels
against scripted faults (every count of attempts comes from the emulator's journal), and `stream()`.

fal_client `_maybe_retry_request` (status, result and cancel alike): up to MAX_ATTEMPTS = 10 attempts; it
retries 408, 409 and 429, and a 502/503/504 only when it looks like fal's ingress (no `x-fal-request-id`,
"nginx" in the body); never a 504 with `X-Fal-Request-Timeout-Type`. Delays are 0.1 s x 2^(n-1) x U(0.5, 1.5).
Each test below waits at most three of those delays (about 0.1 to 0.45 s); the one that exhausts all ten
attempts replaces the `time` module fal_client's retry loop sleeps with, so it waits none of the 51 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from fal_emulator.control import ControlError, EmulatorControl
from fal_emulator.testing import EmulatorProcess
from tests.conftest import SEED_REQUESTS

ENDPOINT = "fal-ai/veo3/image-to-video"
ARGUMENTS = SEED_REQUESTS[ENDPOINT]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("state"), policy="instant") as process:
        yield process


@pytest.fixture
def control(server: EmulatorProcess) -> Iterator[EmulatorControl]:
    assert server.listening is not None
    with EmulatorControl(server.listening.http_url) as control:
        control.reset()
        yield control


def codes(control: EmulatorControl, request_id: str, suffix: str) -> list[int]:
    """The status code of every call whose path is `…/requests/{request_id}{suffix}`, oldest first."""
    path = f"/requests/{request_id}{suffix}"
    return [entry["status"] for entry in control.journal(kind="http") if entry["path"].endswith(path)]


RETRIED = {"ingress_502": 502, "ingress_503": 503, "ingress_504": 504, "timeout_408": 408, "conflict_409": 409,
           "rate_limited": 429}  # fmt: skip


def test_a_status_poll_answered_401_is_not_retried(fal: Any, control: EmulatorControl) -> None:
    handle = fal.submit(ENDPOINT, arguments=ARGUMENTS)
    control.fail_next("unauthorized", route="status", request_id=handle.request_id)
    with pytest.raises(fal.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 401
    assert codes(control, handle.request_id, "/status") == [401]


def test_subscribe_rides_out_two_ingress_503s_on_its_polls(fal: Any, control: EmulatorControl) -> None:
    """The issue's example: the next 2 status polls of this request get an ingress 503, then normal answers."""
    seen: list[str] = []

    def script_polls(request_id: str) -> None:  # called between submit and the first poll
        seen.append(request_id)
        control.fail_next("ingress_503", times=2, route="status", request_id=request_id)

    output = fal.subscribe(ENDPOINT, arguments=ARGUMENTS, on_enqueue=script_polls, on_queue_update=lambda _: None)
    assert output["video"]["file_name"] == "1280x720_8s_audio.mp4"
    assert codes(control, seen[0], "/status")[:3] == [503, 503, 200]


def test_a_status_poll_is_tried_at_most_ten_times(
    fal: Any, control: EmulatorControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(fal.client, "time", SimpleNamespace(sleep=slept.append, time=time.time))
    handle = fal.submit(ENDPOINT, arguments=ARGUMENTS)
    control.fail_next("ingress_503", times=11, route="status", request_id=handle.request_id)
    with pytest.raises(fal.FalClientHTTPError) as caught:
        handle.status()
    assert caught.value.status_code == 503
    assert codes(control, handle.request_id, "/status") == [503] * 10
    assert control.outcomes() == {f"status:{handle.request_id}": 1}  # the eleventh was never asked for
    # The backoff fal_client asked for: 0.1 s x 2^(n-1), jittered by U(0.5, 1.5), nine times.
    assert len(slept) == 9
    for n, delay in enumerate(slept, start=1):
        assert 0.05 * 2 ** (n - 1) <= delay <= 0.15 * 2 ** (n - 1)


def test_a_result_fetch_is_retried_like_a_poll(fal: Any, control: EmulatorControl) -> None:
    handle = fal.submit(ENDPOINT, arguments=ARGUMENTS)
    control.script(ENDPOINT, ["ingress_504", "conflict_409"], route="result", request_id=handle.request_id)
    assert handle.get()["video"]["content_type"] == "video/mp4"
    assert codes(control, handle.request_id, "") == [504, 409, 200]


def test_the_result_of_a_request_that_failed_with_a_500_is_not_retried(fal: Any, control: EmulatorControl) -> None:
    """fal's own 5xx carries `x-fal-request-id`: fal_client retries only the ingress's."""
    handle = fal.submit(ENDPOINT, arguments=ARGUMENTS, headers={"X-Fal-Emulator-Scenario": "runner_server_error"})
    with pytest.raises(fal.FalClientHTTPError) as caught:
        handle.get()
    assert (caught.value.status_code, caught.value.error_type) == (500, "runner_server_error")
    assert codes(control, handle.request_id, "") == [500]


@pytest.mark.parametrize(("route", "token"), [("status", "runner_disconnected"), ("result", "no_media_generated")])
def test_an_error_type_on_a_poll_or_a_result_is_refused_saying_what_to_use_instead(
    fal: Any, control: EmulatorControl, route: str, token: str
) -> None:
    """fal's status never answers a request's error, and a result answers the request's own outcome."""
    handle = fal.submit(ENDPOINT, arguments=ARGUMENTS)
    with pytest.raises(ControlError) as refused:
        control.fail_next(token, route=route, request_id=handle.request_id)
    assert refused.value.status_code == 400
    assert "POST /_emulator/requests/{id}/fail" in str(refused.value)
    assert handle.get()["video"]["content_type"] == "video/mp4"


def test_a_cancel_is_retried_too(fal: Any, control: EmulatorControl) -> None:
    handle = fal.submit(ENDPOINT, arguments=ARGUMENTS, headers={"X-Fal-Emulator-Scenario": "manual"})
    control.script(ENDPOINT, ["rate_limited", "timeout_408"], route="cancel", request_id=handle.request_id)
    handle.cancel()
    assert codes(control, handle.request_id, "/cancel") == [429, 408, 202]
    assert isinstance(handle.status(), fal.Completed)


def test_stream_yields_the_output_as_its_one_event(fal: Any, control: EmulatorControl) -> None:
    """fal_client.stream() POSTs `https://{FAL_RUN_HOST}/{endpoint}/stream` and yields each SSE event's JSON."""
    events = list(fal.stream(ENDPOINT, arguments=ARGUMENTS))
    assert events == [fal.run(ENDPOINT, arguments=ARGUMENTS)]
    assert events[0]["video"]["file_name"] == "1280x720_8s_audio.mp4"
    [call] = [entry for entry in control.journal(method="POST") if entry["path"].endswith("/stream")]
    assert (call["path"], call["status"]) == (f"/run/{ENDPOINT}/stream", 200)


def test_stream_of_a_failing_request_answers_fals_json_error(fal: Any) -> None:
    """As on fal, the error is a JSON answer, not a stream: fal_client's SSE reader refuses its content type."""
    import httpx_sse

    with pytest.raises(httpx_sse.SSEError, match="application/json"):
        list(fal.stream(ENDPOINT, arguments=ARGUMENTS, headers={"X-Fal-Emulator-Scenario": "no_media_generated"}))


def test_stream_of_a_request_that_fails_after_its_200_raises(fal: Any, control: EmulatorControl) -> None:
    """Queued 10 s with a 1.5 s start deadline: a 504 after the stream began. fal_client yields every `data:`
    event as an output (`event.json()`), so the answer carries none and is cut short: it raises."""
    import httpx

    control.set_scale(20)  # the deadline passes in 75 ms of real time; the next reset() puts the scale back
    headers = {"X-Fal-Emulator-Scenario": "timed:10,1", "X-Fal-Request-Timeout": "1.5"}
    events: list[Any] = []
    with pytest.raises(httpx.RemoteProtocolError):
        events.extend(fal.stream(ENDPOINT, arguments=ARGUMENTS, headers=headers))
    assert events == []
    [call] = [entry for entry in control.journal(method="POST") if entry["path"].endswith("/stream")]
    [request] = control.requests()
    assert call["status"] == 200
    assert control.request(request["request_id"])["outcome"]["body"]["error_type"] == "request_timeout"


def test_fals_queue_retries_a_flaky_runner_unless_x_fal_no_retry(fal: Any, control: EmulatorControl) -> None:
    """`runner_disconnected:2`: the first two attempts lose their runner (503); fal's queue retries them (up
    to 10 attempts), so the request succeeds, unless `X-Fal-No-Retry` asks for one attempt only."""
    flaky = {"X-Fal-Emulator-Scenario": "runner_disconnected:2"}
    updates: list[Any] = []
    output = fal.subscribe(ENDPOINT, arguments=ARGUMENTS, headers=flaky, with_logs=True, on_queue_update=updates.append)
    assert output["video"]["content_type"] == "video/mp4"
    messages = [log["message"] for log in updates[-1].logs]
    assert [message for message in messages if "retried on another runner" in message] == [
        "Runner disconnected (runner_disconnected): the request is retried on another runner, attempt 2 of 10",
        "Runner disconnected (runner_disconnected): the request is retried on another runner, attempt 3 of 10",
    ]
    for no_retry in ("1", "true", "yes"):
        with pytest.raises(fal.FalClientHTTPError) as caught:
            fal.subscribe(ENDPOINT, arguments=ARGUMENTS, headers={**flaky, "X-Fal-No-Retry": no_retry})
        assert (caught.value.status_code, caught.value.error_type) == (503, "runner_disconnected")
    with pytest.raises(fal.FalClientHTTPError) as exhausted:  # ten failed attempts: fal gives up too
        fal.subscribe(ENDPOINT, arguments=ARGUMENTS, headers={"X-Fal-Emulator-Scenario": "runner_disconnected:10"})
    assert exhausted.value.status_code == 503


def test_platform_headers_without_a_visible_effect_are_accepted_and_journaled(
    fal: Any, control: EmulatorControl
) -> None:
    headers = {"X-Fal-Store-IO": "0", "X-Fal-Object-Lifecycle-Preference": '{"expiration_duration_seconds": 60}',
               "x-fal-disable-fallbacks": "true"}  # fmt: skip
    handle = fal.submit(ENDPOINT, arguments=ARGUMENTS, hint="lora-a", headers=headers)
    assert handle.get()["video"]["content_type"] == "video/mp4"
    [entry] = [e for e in control.journal(method="POST") if e["request_id"] == handle.request_id]
    assert entry["headers"]["x-fal-runner-hint"] == "lora-a"
    assert entry["headers"]["x-fal-store-io"] == "0"
