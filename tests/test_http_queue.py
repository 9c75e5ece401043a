"""The queue API over HTTP (in-process): every status code and body a fal client relies on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import KEY, SEED_REQUESTS, ClientFactory

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = SEED_REQUESTS[ENDPOINT]


def submit(client: TestClient, endpoint: str = ENDPOINT, body: Any = None) -> dict[str, Any]:
    response = client.post(f"/{endpoint}", json=BODY if body is None else body, headers=KEY)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def get(client: TestClient, url: str, **params: str) -> Any:
    return client.get(url, params=params, headers=KEY)


def assert_fal_json(response: Any) -> None:
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-fal-request-id"]


def test_submit_answers_fal_queue_status_with_app_level_urls(client: TestClient) -> None:
    response = client.post(f"/{ENDPOINT}", json=BODY, headers=KEY)
    assert response.status_code == 200
    assert_fal_json(response)
    body = response.json()
    request_id = body["request_id"]
    base = f"http://testserver/fal-ai/veo3/requests/{request_id}"
    assert body == {
        "status": "IN_QUEUE",
        "request_id": request_id,
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
        "logs": None,
        "metrics": {},
        "queue_position": 0,
    }
    assert response.headers["x-fal-request-id"] == request_id


def test_the_same_seed_gives_the_same_request_ids(make_client: ClientFactory) -> None:
    first, second = make_client(), make_client()
    assert [submit(first)["request_id"] for _ in range(2)] == [submit(second)["request_id"] for _ in range(2)]


def test_status_is_202_while_queued_and_running_and_200_when_completed(client: TestClient) -> None:
    submitted = submit(client)
    queued = get(client, submitted["status_url"], logs="1")
    assert (queued.status_code, queued.json()["status"], queued.json()["queue_position"]) == (202, "IN_QUEUE", 0)
    assert "logs" not in queued.json()
    running = get(client, submitted["status_url"], logs="1")
    assert (running.status_code, running.json()["status"]) == (202, "IN_PROGRESS")
    assert running.json()["logs"][0]["message"] == "Loading fal-ai/veo3 model weights"
    assert "queue_position" not in running.json()
    done = get(client, submitted["status_url"], logs="true")
    assert done.status_code == 200
    assert_fal_json(done)
    body = done.json()
    assert body["status"] == "COMPLETED"
    assert body["metrics"]["inference_time"] >= 0
    assert body["logs"][-1]["message"] == "Request completed."
    assert set(body["logs"][0]) == {"message", "level", "source", "timestamp"}
    assert "error" not in body


@pytest.mark.parametrize("flag", ["0", "false", None])
def test_logs_are_null_unless_asked_for(make_client: ClientFactory, flag: str | None) -> None:
    client = make_client(policy="instant")
    submitted = submit(client)
    params = {} if flag is None else {"logs": flag}
    assert get(client, submitted["status_url"], **params).json()["logs"] is None


def test_a_bad_logs_flag_is_a_422(client: TestClient) -> None:
    response = get(client, submit(client)["status_url"], logs="maybe")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "logs"]


def test_queue_position_counts_the_requests_ahead(make_client: ClientFactory) -> None:
    client = make_client(policy="manual")
    answers = [submit(client) for _ in range(3)]
    assert [answer["queue_position"] for answer in answers] == [0, 1, 2]
    assert get(client, answers[2]["status_url"]).json()["queue_position"] == 2


def test_result_is_400_before_completion_then_the_video(client: TestClient) -> None:
    submitted = submit(client)
    early = get(client, submitted["response_url"])
    assert (early.status_code, early.json()) == (400, {"detail": "Request is still in progress"})
    assert early.headers["x-fal-request-id"] == submitted["request_id"]
    for _ in range(3):
        get(client, submitted["status_url"])
    result = get(client, submitted["response_url"])
    assert result.status_code == 200
    assert_fal_json(result)
    video = result.json()["video"]
    assert video["url"] == "http://testserver/files/1280x720_8s_audio.mp4"
    assert (video["content_type"], video["file_name"]) == ("video/mp4", "1280x720_8s_audio.mp4")
    assert video["file_size"] > 0
    assert list(video) == ["url", "content_type", "file_name", "file_size"]


def test_full_endpoint_path_forms_and_the_response_alias_work(make_client: ClientFactory) -> None:
    client = make_client(policy="instant")
    request_id = submit(client)["request_id"]
    for prefix in ("fal-ai/veo3", ENDPOINT):
        assert get(client, f"/{prefix}/requests/{request_id}/status").status_code == 200
        assert get(client, f"/{prefix}/requests/{request_id}").status_code == 200
    assert get(client, f"/fal-ai/veo3/requests/{request_id}/response").status_code == 200


def test_a_request_is_not_found_under_another_app(make_client: ClientFactory) -> None:
    client = make_client(policy="instant")
    request_id = submit(client)["request_id"]
    response = get(client, f"/fal-ai/veo2/requests/{request_id}/status")
    assert response.status_code == 404
    assert response.json()["status"] == "NOT_FOUND"


def test_cancel_while_queued_is_202_and_the_request_never_runs(client: TestClient) -> None:
    submitted = submit(client)
    response = client.put(submitted["cancel_url"], headers=KEY)
    assert (response.status_code, response.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    assert_fal_json(response)
    status = get(client, submitted["status_url"], logs="1").json()
    assert status["status"] == "COMPLETED"
    assert (status["error_type"], status["error"]) == ("client_cancelled", "Request cancelled by the client.")
    assert status["logs"] == [] and status["metrics"] == {}
    result = get(client, submitted["response_url"])
    assert result.status_code == 499
    assert result.json() == {"detail": "Request cancelled by the client.", "error_type": "client_cancelled"}
    assert result.headers["x-fal-error-type"] == "client_cancelled"


def test_cancel_after_completion_is_400_already_completed(make_client: ClientFactory) -> None:
    client = make_client(policy="instant")
    response = client.put(submit(client)["cancel_url"], headers=KEY)
    assert (response.status_code, response.json()) == (400, {"status": "ALREADY_COMPLETED"})


def test_cancel_of_an_unknown_request_is_404_not_found(client: TestClient) -> None:
    response = client.put("/fal-ai/veo3/requests/00000000-0000-4000-8000-000000000000/cancel", headers=KEY)
    assert response.status_code == 404
    assert response.json()["status"] == "NOT_FOUND"
    assert_fal_json(response)


@pytest.mark.parametrize("suffix", ["/status", "", "/status/stream"])
def test_unknown_request_ids_are_404(client: TestClient, suffix: str) -> None:
    response = get(client, f"/fal-ai/veo3/requests/00000000-0000-4000-8000-000000000000{suffix}")
    assert response.status_code == 404
    assert_fal_json(response)


def test_an_unknown_endpoint_is_404(client: TestClient) -> None:
    response = client.post("/fal-ai/veo9/image-to-video", json=BODY, headers=KEY)
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "Endpoint 'fal-ai/veo9/image-to-video' not found"},
    )
    assert_fal_json(response)


def test_an_unknown_path_is_404_in_fal_shape(client: TestClient) -> None:
    response = client.get("/nothing/here", headers=KEY)
    assert (response.status_code, response.json()) == (404, {"detail": "Path /nothing/here not found"})
    assert_fal_json(response)


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Missing Authorization header"),
        ("Token abc", "Invalid Authorization header format"),
        ("Key ", "Invalid Authorization header format"),
    ],
)
def test_missing_or_malformed_credentials_are_401(client: TestClient, header: str | None, detail: str) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.post(f"/{ENDPOINT}", json=BODY, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"].startswith(detail)
    assert_fal_json(response)


def test_bearer_tokens_are_accepted_like_resellers_send_them(client: TestClient) -> None:
    response = client.post(f"/{ENDPOINT}", json=BODY, headers={"Authorization": "Bearer sk-reseller"})
    assert response.status_code == 200


def test_a_key_setting_restricts_the_accepted_keys(make_client: ClientFactory) -> None:
    client = make_client(keys=("good",))
    assert client.post(f"/{ENDPOINT}", json=BODY, headers={"Authorization": "Key good"}).status_code == 200
    refused = client.post(f"/{ENDPOINT}", json=BODY, headers={"Authorization": "Key bad"})
    assert (refused.status_code, refused.json()) == (401, {"detail": "No user found for Key ID and Secret"})


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe"])
def test_malformed_bodies_are_422_never_500(client: TestClient, raw: bytes) -> None:
    response = client.post(f"/{ENDPOINT}", content=raw, headers={**KEY, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert_fal_json(response)


def test_the_status_stream_sends_each_change_and_closes_after_completed(client: TestClient) -> None:
    submitted = submit(client)
    url = submitted["status_url"] + "/stream"
    with client.stream("GET", url, params={"logs": "1"}, headers=KEY) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-fal-request-id"] == submitted["request_id"]
        events = [json.loads(line[len("data: ") :]) for line in response.iter_lines() if line.startswith("data: ")]
    statuses = [event["status"] for event in events]
    assert statuses[0] == "IN_QUEUE" and statuses[-1] == "COMPLETED"
    assert "IN_PROGRESS" in statuses
    assert statuses == sorted(statuses, key=["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].index)
    assert events[-1]["logs"][-1]["message"] == "Request completed."
    # Each event carries only the lines new since the one before: together they are the list a poll shows.
    streamed = [line for event in events if event.get("logs") for line in event["logs"]]
    polled = client.get(submitted["status_url"], params={"logs": "1"}, headers=KEY).json()
    assert streamed == polled["logs"]


def test_without_logs_the_status_stream_sends_logs_null(client: TestClient) -> None:
    submitted = submit(client)
    with client.stream("GET", submitted["status_url"] + "/stream", headers=KEY) as response:
        events = [json.loads(line[len("data: ") :]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [event["status"] for event in events] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert [event.get("logs", "absent") for event in events] == ["absent", None, None]


def test_the_status_stream_sends_keepalive_comments(make_client: ClientFactory) -> None:
    client = make_client(policy="timed:0.3,0", stream_keepalive=0.05)
    submitted = submit(client)
    with client.stream("GET", submitted["status_url"] + "/stream", headers=KEY) as response:
        lines = list(response.iter_lines())
    assert ": keepalive" in lines
    assert json.loads(lines[-2][len("data: ") :])["status"] == "COMPLETED"


def test_sync_run_answers_the_output_directly(client: TestClient) -> None:
    response = client.post(f"/run/{ENDPOINT}", json=BODY, headers=KEY)
    assert response.status_code == 200
    assert_fal_json(response)
    assert response.json()["video"]["file_name"] == "1280x720_8s_audio.mp4"


def test_sync_run_validates_input_too(client: TestClient) -> None:
    response = client.post(f"/run/{ENDPOINT}", json={"prompt": "only"}, headers=KEY)
    assert response.status_code == 422


def test_health_needs_no_key(client: TestClient) -> None:
    response = client.get("/_emulator/health")
    assert (response.status_code, response.json()["status"], response.json()["endpoints"]) == (200, "ok", 18)


def test_a_wrong_method_on_a_known_path_is_405(client: TestClient) -> None:
    response = client.get(f"/{ENDPOINT}", headers=KEY)
    assert (response.status_code, response.json()) == (405, {"detail": "Method Not Allowed"})
    assert response.headers["allow"] == "POST"


def test_fields_an_endpoint_does_not_declare_are_ignored_like_fal_does(make_client: ClientFactory) -> None:
    client = make_client(policy="instant")
    for resolution in ("banana", 123, ["4k"], "1080p"):
        body = {"prompt": "x", "resolution": resolution, "duration": "8s"}
        answer = submit(client, "fal-ai/veo2", body)
        result = get(client, answer["response_url"])
        assert result.status_code == 200
        assert result.json()["video"]["file_name"] == "1280x720_8s_silent.mp4"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"prompt": "x", "seed": NaN}',
        b'{"prompt": "x", "seed": -Infinity}',
        b'{"prompt": "x", "seed": 1e400}',
        b'{"prompt": "x", "aspect_ratio": "\\ud800"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"prompt": "x", "seed": ' + b"7" * 5000 + b"}",
    ],
    ids=["nan", "infinity", "overflow", "lone-surrogate", "deep-nesting", "huge-integer"],
)
def test_json_that_is_not_strict_json_is_422_json_invalid(client: TestClient, raw: bytes) -> None:
    response = client.post(f"/{ENDPOINT}", content=raw, headers={**KEY, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert_fal_json(response)


@pytest.mark.parametrize("request_id", ["%E2%82%AC", "%0A", "a%0D%0Ab", "x" * 200])
@pytest.mark.parametrize("suffix", ["/status", "", "/cancel"])
def test_odd_request_ids_are_404_and_never_echoed_into_headers(
    client: TestClient, request_id: str, suffix: str
) -> None:
    method = "PUT" if suffix == "/cancel" else "GET"
    response = client.request(method, f"/fal-ai/veo3/requests/{request_id}{suffix}", headers=KEY)
    assert response.status_code == 404
    assert_fal_json(response)
    assert "\n" not in response.headers["x-fal-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/fal-ai/veo3/requests/", 404),
        ("GET", "/fal-ai/veo3/requests/abc/", 404),
        ("POST", "/fal-ai/veo3/requests/abc/cancel", 405),
        ("POST", "/fal-ai/veo3/requests/abc/status", 405),
        ("GET", "/fal-ai/veo3/requests/abc/cancel", 405),
        ("DELETE", f"/{ENDPOINT}", 405),
    ],
)
def test_wrong_methods_are_405_and_unknown_paths_404(client: TestClient, method: str, path: str, status: int) -> None:
    response = client.request(method, path, headers=KEY)
    assert response.status_code == status
    assert_fal_json(response)
