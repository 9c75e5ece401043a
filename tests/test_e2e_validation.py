"""fal_client 1.0.3, unmodified, meets fal's validation: a bad input is accepted (a request id), then the
runner's 422 comes back from `handle.get()` / `subscribe`, with an ERROR webhook; lax values are accepted and
change the output (`"generate_audio": "false"` gives a silent clip)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fal_emulator.testing import EmulatorProcess
from tests.conftest import SEED_REQUESTS
from tests.test_e2e_fal_client import assert_video, download
from tests.webhook_receiver import Receiver

ENDPOINT = "fal-ai/veo3/image-to-video"
BAD = {key: value for key, value in SEED_REQUESTS[ENDPOINT].items() if key != "prompt"}  # no prompt


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("state"), policy="polls:1") as process:
        yield process


def assert_runner_422(error: Any) -> None:
    assert error.status_code == 422
    [item] = error.message  # fal_client's message is the body's `detail`
    assert (item["type"], item["loc"], item["msg"]) == ("missing", ["body", "prompt"], "Field required")
    assert error.error_type is None  # FastAPI's 422 names no error type
    assert error.response_headers["x-fal-billable-units"] == "0"


@pytest.mark.parametrize("endpoint_id", list(SEED_REQUESTS))
def test_a_bad_input_gets_a_request_id_and_the_422_comes_from_get(fal: Any, endpoint_id: str) -> None:
    arguments = {key: value for key, value in SEED_REQUESTS[endpoint_id].items() if key != "prompt"}
    handle = fal.submit(endpoint_id, arguments=arguments)
    assert handle.request_id
    with pytest.raises(fal.FalClientHTTPError) as caught:
        handle.get()
    assert_runner_422(caught.value)
    completed = handle.status(with_logs=True)
    assert isinstance(completed, fal.Completed)
    assert completed.error is None and completed.error_type is None


def test_subscribe_sees_the_lifecycle_then_raises_the_422(fal: Any) -> None:
    updates: list[Any] = []
    with pytest.raises(fal.FalClientHTTPError) as caught:
        fal.subscribe(ENDPOINT, arguments=BAD, with_logs=True, on_queue_update=updates.append)
    assert_runner_422(caught.value)
    names = [type(update).__name__ for update in updates]
    assert names[0] == "Queued" and "InProgress" in names and names[-1] == "Completed"


def test_run_answers_the_422_directly(fal: Any) -> None:
    with pytest.raises(fal.FalClientHTTPError) as caught:
        fal.run(ENDPOINT, arguments=BAD)
    assert_runner_422(caught.value)


def test_a_bad_input_sends_an_error_webhook(fal: Any) -> None:
    receiver = Receiver()
    receiver.thread.start()
    try:
        handle = fal.submit(ENDPOINT, arguments=BAD, webhook_url=receiver.url)
        with pytest.raises(fal.FalClientHTTPError) as caught:
            handle.get()
        _, body = receiver.next()
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    payload = json.loads(body)
    assert (payload["status"], payload["error"], payload["request_id"]) == (
        "ERROR",
        "Invalid status code: 422",
        handle.request_id,
    )
    assert payload["payload"] == {"detail": caught.value.message}


@pytest.mark.parametrize(
    ("lax", "clip"),
    [
        ({"generate_audio": "false"}, (1280, 720, 8, False)),
        ({"generate_audio": "true", "seed": "42", "duration": "4s"}, (1280, 720, 4, True)),
    ],
)
def test_lax_values_are_accepted_and_change_the_output(
    fal: Any, server: EmulatorProcess, lax: dict[str, Any], clip: tuple[int, int, int, bool]
) -> None:
    arguments = {**SEED_REQUESTS[ENDPOINT], "aspect_ratio": "16:9", **lax}
    output = fal.subscribe(ENDPOINT, arguments=arguments)
    width, height, seconds, audio = clip
    assert output["video"]["file_name"] == f"{width}x{height}_{seconds}s_{'audio' if audio else 'silent'}.mp4"
    assert_video(download(output["video"]["url"], server), clip)
