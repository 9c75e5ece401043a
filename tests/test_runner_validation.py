"""Validation where fal does it: the queue takes any JSON body, the runner refuses a bad one.

A bad input gets a request id; it waits in the queue like any request, runs briefly (FastAPI refuses the body
before the app's code starts), and completes: the status says COMPLETED with no `error` (the runner's answer
names no error type), the result is FastAPI's 422 with `x-fal-billable-units: 0`, and a webhook says ERROR.
`validate_at="submit"` is the opt-in shortcut: the same 422 at once. Lax values are accepted and used.
"""

from __future__ import annotations

import io
import json
from typing import Any

import av
import pytest
from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from tests.conftest import CATALOG, KEY, SEED_REQUESTS, ClientFactory
from tests.test_inputs import data_uri, png
from tests.webhook_receiver import Receiver

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = SEED_REQUESTS[ENDPOINT]
CHANGES = [
    ({"prompt": None}, ["body", "prompt"], "missing"),
    ({"prompt": 1}, ["body", "prompt"], "string_type"),
    ({"aspect_ratio": "4:3"}, ["body", "aspect_ratio"], "literal_error"),
]


def bad_body(endpoint_id: str, change: dict[str, Any]) -> dict[str, Any]:
    body = {**SEED_REQUESTS[endpoint_id], **change}
    return {key: value for key, value in body.items() if value is not None}


def poll_until_completed(client: TestClient, status_url: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for _ in range(10):
        seen.append(client.get(status_url, params={"logs": "1"}, headers=KEY).json())
        if seen[-1]["status"] == "COMPLETED":
            return seen
    raise AssertionError(f"not COMPLETED after 10 polls: {seen[-1]}")


@pytest.mark.parametrize("endpoint_id", list(SEED_REQUESTS))
@pytest.mark.parametrize(("change", "loc", "type_"), CHANGES)
def test_a_bad_input_gets_a_request_id_then_the_runners_422_at_the_result(
    client: TestClient, endpoint_id: str, change: dict[str, Any], loc: list[str], type_: str
) -> None:
    submitted = client.post(f"/{endpoint_id}", json=bad_body(endpoint_id, change), headers=KEY)
    assert submitted.status_code == 200
    answer = submitted.json()
    assert answer["status"] == "IN_QUEUE" and answer["request_id"]
    statuses = poll_until_completed(client, answer["status_url"])
    assert [status["status"] for status in statuses] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    completed = statuses[-1]
    assert "error" not in completed and "error_type" not in completed  # the error shows only at the result
    result = client.get(answer["response_url"], headers=KEY)
    assert result.status_code == 422
    assert result.headers["x-fal-billable-units"] == "0"
    assert "x-fal-error-type" not in result.headers and "x-fal-retryable" not in result.headers
    [item] = result.json()["detail"]
    assert (item["loc"], item["type"]) == (loc, type_)
    assert set(item) <= {"type", "loc", "msg", "input", "ctx"} and {"type", "loc", "msg", "input"} <= set(item)


def test_the_runner_logs_no_model_lines_for_a_refused_input(client: TestClient) -> None:
    answer = client.post(f"/{ENDPOINT}", json=bad_body(ENDPOINT, {"prompt": None}), headers=KEY).json()
    running, completed = poll_until_completed(client, answer["status_url"])[1:]
    assert running["logs"] == []  # FastAPI refuses the body before the app's code (and its logging) runs
    assert [(line["level"], line["message"]) for line in completed["logs"]] == [
        ("ERROR", "Request failed: Field required")
    ]
    assert completed["metrics"]["inference_time"] >= 0


def test_a_refused_input_waits_in_the_queue_then_runs_only_briefly(make_client: ClientFactory) -> None:
    client = make_client(policy="timed:2,30")
    client.post("/_emulator/clock", json={"freeze": True})
    bad = client.post(f"/{ENDPOINT}", json=bad_body(ENDPOINT, {"aspect_ratio": "4:3"}), headers=KEY).json()
    good = client.post(f"/{ENDPOINT}", json=BODY, headers=KEY).json()

    def statuses() -> list[str]:
        return [client.get(answer["status_url"], headers=KEY).json()["status"] for answer in (bad, good)]

    client.post("/_emulator/clock", json={"advance": 1.99})
    assert statuses() == ["IN_QUEUE", "IN_QUEUE"]
    client.post("/_emulator/clock", json={"advance": 0.02})
    assert statuses() == ["IN_PROGRESS", "IN_PROGRESS"]
    client.post("/_emulator/clock", json={"advance": 0.1})
    assert statuses() == ["COMPLETED", "IN_PROGRESS"]
    completed = client.get(bad["status_url"], headers=KEY).json()
    assert completed["metrics"]["inference_time"] == 0.1


def test_a_sync_run_answers_the_runners_422_directly(client: TestClient) -> None:
    response = client.post(f"/run/{ENDPOINT}", json={"prompt": "only"}, headers=KEY)
    assert response.status_code == 422
    assert response.headers["x-fal-billable-units"] == "0"
    assert [item["loc"] for item in response.json()["detail"]] == [["body", "image_url"]]


@pytest.mark.parametrize("endpoint_id", list(SEED_REQUESTS))
@pytest.mark.parametrize(("change", "loc", "type_"), CHANGES)
def test_validate_at_submit_refuses_a_bad_input_at_once(
    make_client: ClientFactory, endpoint_id: str, change: dict[str, Any], loc: list[str], type_: str
) -> None:
    client = make_client(validate_at="submit")
    response = client.post(f"/{endpoint_id}", json=bad_body(endpoint_id, change), headers=KEY)
    assert response.status_code == 422
    assert response.headers["x-fal-billable-units"] == "0"
    [item] = response.json()["detail"]
    assert (item["loc"], item["type"]) == (loc, type_)
    assert client.get("/_emulator/requests").json() == []  # nothing was enqueued


def test_an_unusable_inline_image_is_refused_by_the_runner_too(make_client: ClientFactory) -> None:
    body = {"prompt": "p", "image_url": data_uri(b"plain text", "text/plain")}
    client = make_client(policy="instant")
    answer = client.post(f"/{ENDPOINT}", json=body, headers=KEY).json()
    completed = client.get(answer["status_url"], headers=KEY).json()
    # A model error names its type (fal's model-error catalogue), so the status shows it, as for any model error.
    assert (completed["status"], completed["error_type"]) == ("COMPLETED", "image_load_error")
    result = client.get(answer["response_url"], headers=KEY)
    assert (result.status_code, result.json()["detail"][0]["loc"]) == (422, ["body", "image_url"])
    immediate = make_client(validate_at="submit").post(f"/{ENDPOINT}", json=body, headers=KEY)
    assert (immediate.status_code, immediate.json()["detail"][0]["type"]) == (422, "image_load_error")


@pytest.mark.parametrize("raw", [b"{not json", b""])
def test_a_body_that_is_not_json_is_refused_at_once_in_either_mode(make_client: ClientFactory, raw: bytes) -> None:
    for mode in ("runner", "submit"):
        client = make_client(validate_at=mode)
        response = client.post(f"/{ENDPOINT}", content=raw, headers={**KEY, "Content-Type": "application/json"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] in {"json_invalid", "missing"}


def test_a_json_body_that_is_not_an_object_is_accepted_then_refused(make_client: ClientFactory) -> None:
    client = make_client(policy="instant")
    for body, type_ in ((None, "missing"), ([1], "model_attributes_type"), ("text", "model_attributes_type")):
        raw = json.dumps(body).encode()
        answer = client.post(f"/{ENDPOINT}", content=raw, headers={**KEY, "Content-Type": "application/json"})
        assert answer.status_code == 200
        result = client.get(answer.json()["response_url"], headers=KEY)
        assert result.status_code == 422
        assert result.json()["detail"] == [
            {**result.json()["detail"][0], "type": type_, "loc": ["body"], "input": body}
        ]


# -- lax values: accepted, and what the runner uses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "file_name"),
    [
        ({"generate_audio": "false"}, "1280x720_8s_silent.mp4"),
        ({"generate_audio": 0, "duration": "4s"}, "1280x720_4s_silent.mp4"),
        ({"generate_audio": "true", "seed": "42", "resolution": "1080p"}, "1920x1080_8s_audio.mp4"),
        ({"seed": None, "negative_prompt": None}, "1280x720_8s_audio.mp4"),
    ],
)
def test_lax_values_are_accepted_and_the_clip_follows_their_coerced_value(
    make_client: ClientFactory, change: dict[str, Any], file_name: str
) -> None:
    client = make_client(policy="instant")
    answer = client.post(f"/{ENDPOINT}", json={**BODY, "aspect_ratio": "16:9", **change}, headers=KEY).json()
    result = client.get(answer["response_url"], headers=KEY)
    assert result.status_code == 200, result.text
    assert result.json()["video"]["file_name"] == file_name
    stored = client.get(f"/_emulator/requests/{answer['request_id']}").json()
    assert stored["input"] == {**BODY, "aspect_ratio": "16:9", **change}  # what the client sent is kept as sent


def test_the_clip_and_the_render_read_the_coerced_input(make_client: ClientFactory) -> None:
    """`"no"` for generate_audio is False for the clip choice and for a video rendered from the input image."""
    body = {"prompt": "p", "image_url": data_uri(png(90, 160)), "aspect_ratio": "auto", "generate_audio": "no"}
    body["duration"] = "4s"
    endpoint = "fal-ai/veo3.1/fast/image-to-video"
    fixture = make_client(policy="instant", render="off")
    answer = fixture.post(f"/{endpoint}", json=body, headers=KEY).json()
    assert fixture.get(answer["response_url"], headers=KEY).json()["video"]["file_name"] == "720x1280_4s_silent.mp4"
    rendered = make_client(policy="instant")
    answer = rendered.post(f"/{endpoint}", json=body, headers=KEY).json()
    rendered.get(answer["status_url"], headers=KEY)
    assert rendered.app.state.emulator.renders.wait(120)  # type: ignore[attr-defined]
    video = rendered.get(answer["response_url"], headers=KEY).json()["video"]
    with av.open(io.BytesIO(rendered.get(video["url"]).content)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, len(container.streams.audio)) == (720, 1280, 0)


def test_a_refused_input_sends_an_error_webhook_with_the_detail_list(tmp_path: Any) -> None:
    receiver = Receiver()
    receiver.thread.start()
    app = create_app(Settings(seed=7, policy="instant", state_dir=tmp_path), catalog=CATALOG)
    try:
        with TestClient(app) as client:  # the lifespan runs the delivery loop
            params = {"fal_webhook": receiver.url}
            answer = client.post(f"/{ENDPOINT}", params=params, json={"prompt": 5}, headers=KEY).json()
            _, body = receiver.next()
            result = client.get(answer["response_url"], headers=KEY)
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    payload = json.loads(body)
    assert (payload["status"], payload["error"]) == ("ERROR", "Invalid status code: 422")
    assert payload["request_id"] == payload["gateway_request_id"] == answer["request_id"]
    assert payload["payload"] == result.json()
    assert [item["loc"] for item in payload["payload"]["detail"]] == [["body", "prompt"], ["body", "image_url"]]
