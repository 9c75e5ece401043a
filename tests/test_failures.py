"""Every documented fal error, on cue: the same error in the status, the result and its headers."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from fal_emulator.failures import FAILURES
from fal_emulator.scenarios import parse_scenario
from tests.conftest import KEY, ClientFactory

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "p", "image_url": "https://example.com/a.png"}
SCENARIO = "X-Fal-Emulator-Scenario"


def submit(client: TestClient, scenario: str | None = None, **kwargs: Any) -> Any:
    headers = {**KEY, **({SCENARIO: scenario} if scenario else {}), **kwargs.pop("headers", {})}
    return client.post(f"/{ENDPOINT}", json=kwargs.pop("json", BODY), headers=headers, **kwargs)


@pytest.fixture
def instant(make_client: ClientFactory) -> TestClient:
    return make_client(policy="instant")


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_each_error_completes_the_request_and_is_the_stored_result(instant: TestClient, name: str) -> None:
    failure = FAILURES[name]
    submitted = submit(instant, name).json()
    status = instant.get(submitted["status_url"], headers=KEY)
    assert status.status_code == 200
    body = status.json()
    assert (body["status"], body["error_type"], body["error"]) == ("COMPLETED", name, failure.message)
    result = instant.get(submitted["response_url"], headers=KEY)
    assert result.status_code == failure.status_code
    assert result.headers["x-fal-error-type"] == name
    assert result.headers["x-fal-request-id"] == submitted["request_id"]
    if failure.family == "model":
        [item] = result.json()["detail"]
        assert (item["type"], item["msg"], item["loc"]) == (name, failure.message, list(failure.loc))
        assert item["url"] == f"https://docs.fal.ai/errors/#{name}"
        assert item.get("ctx", {}) == dict(failure.ctx)
        assert result.headers["x-fal-retryable"] == ("true" if failure.retryable else "false")
    else:
        assert result.json() == {"detail": failure.message, "error_type": name}


def test_model_error_context_is_fals(instant: TestClient) -> None:
    result = instant.get(submit(instant, "image_too_small").json()["response_url"], headers=KEY).json()
    assert result["detail"][0]["ctx"] == {"min_height": 720, "min_width": 720}
    result = instant.get(submit(instant, "file_too_large").json()["response_url"], headers=KEY).json()
    assert result["detail"][0]["ctx"] == {"max_size": 8 * 1024 * 1024}


@pytest.mark.parametrize(
    ("scenario", "status", "body", "headers"),
    [
        ("unauthorized", 401, {"detail": "No user found for Key ID and Secret"}, {}),
        (
            "locked",
            403,
            {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."},
            {},
        ),
        (
            "rate_limited",
            429,
            {"detail": "Concurrent requests limit exceeded", "error_type": "concurrent_requests_limit"},
            {"x-fal-error-type": "concurrent_requests_limit", "x-fal-needs-retry": "1"},
        ),
    ],
)
def test_rejections_answer_the_submit_at_once(
    client: TestClient, scenario: str, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    response = submit(client, scenario)
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers["x-fal-request-id"]
    for name, value in headers.items():
        assert response.headers[name] == value
    assert client.get("/_emulator/requests").json() == []


@pytest.mark.parametrize("code", [502, 503, 504])
def test_ingress_errors_are_nginx_pages_without_a_request_id(client: TestClient, code: int) -> None:
    response = submit(client, f"ingress_{code}")
    assert response.status_code == code
    assert response.headers["content-type"].startswith("text/html")
    assert "nginx" in response.text
    assert "x-fal-request-id" not in response.headers


def test_an_unknown_scenario_is_400_bad_request_naming_it(client: TestClient) -> None:
    response = submit(client, "content_policy, typo")
    assert response.status_code == 400
    assert response.json()["error_type"] == "bad_request"
    assert "'content_policy'" in response.json()["detail"]


def test_a_scenario_can_set_this_requests_policy(client: TestClient) -> None:
    submitted = submit(client, "manual").json()
    for _ in range(5):
        assert client.get(submitted["status_url"], headers=KEY).json()["status"] == "IN_QUEUE"


def test_fal_max_queue_length_rejects_with_429_when_more_are_waiting(make_client: ClientFactory) -> None:
    client = make_client(policy="manual")
    for _ in range(3):
        assert submit(client, params={"fal_max_queue_length": "3"}).status_code == 200
    refused = submit(client, params={"fal_max_queue_length": "2"})
    assert refused.status_code == 429
    assert "fal_max_queue_length" in refused.json()["detail"]
    assert submit(client, params={"fal_max_queue_length": "x"}).status_code == 400


def test_a_start_deadline_passing_in_the_queue_is_a_504_user_timeout(make_client: ClientFactory) -> None:
    client = make_client(policy="manual")
    submitted = submit(client, headers={"X-Fal-Request-Timeout": "30"}).json()
    client.post("/_emulator/clock", json={"advance": 29.9})
    assert client.get(submitted["status_url"], headers=KEY).json()["status"] == "IN_QUEUE"
    client.post("/_emulator/clock", json={"advance": 0.1})
    status = client.get(submitted["status_url"], headers=KEY).json()
    assert (status["status"], status["error_type"], status["error"]) == (
        "COMPLETED",
        "request_timeout",
        "Request timed out",
    )
    result = client.get(submitted["response_url"], headers=KEY)
    assert result.status_code == 504
    assert result.headers["x-fal-request-timeout-type"] == "user"
    assert result.json() == {"detail": "Request timed out", "error_type": "request_timeout"}


def test_a_request_that_starts_before_its_deadline_runs_normally(make_client: ClientFactory) -> None:
    client = make_client(policy="timed:1,10")
    submitted = submit(client, headers={"X-Fal-Request-Timeout": "2"}).json()
    client.post("/_emulator/clock", json={"advance": 20})
    assert client.get(submitted["response_url"], headers=KEY).status_code == 200


@pytest.mark.parametrize("value", ["abc", "0", "0.05", "nan", "inf"])
def test_an_invalid_timeout_header_is_400_bad_request(client: TestClient, value: str) -> None:
    response = submit(client, headers={"X-Fal-Request-Timeout": value})
    assert (response.status_code, response.json()["error_type"]) == (400, "bad_request")


def test_sync_run_past_its_start_deadline_answers_504_user(make_client: ClientFactory) -> None:
    client = make_client(policy="timed:5,1", time_scale=100.0)
    response = client.post(f"/run/{ENDPOINT}", json=BODY, headers={**KEY, "X-Fal-Request-Timeout": "1"})
    assert response.status_code == 504
    assert response.headers["x-fal-request-timeout-type"] == "user"


def test_sync_run_meets_rate_limits_directly(client: TestClient) -> None:
    response = client.post(f"/run/{ENDPOINT}", json=BODY, headers={**KEY, SCENARIO: "rate_limited"})
    assert response.status_code == 429
    assert response.json()["error_type"] == "concurrent_requests_limit"


def test_prompt_scenarios_are_opt_in(make_client: ClientFactory) -> None:
    body = {**BODY, "prompt": "a cat [[fal-emulator:no_media_generated]]"}
    off = make_client(policy="instant")
    on = make_client(policy="instant", prompt_scenarios=True)
    for client, expected in ((off, None), (on, "no_media_generated")):
        submitted = submit(client, json=body).json()
        assert client.get(submitted["status_url"], headers=KEY).json().get("error_type") == expected


def test_scenarios_combine_tokens() -> None:
    scenario = parse_scenario("timed:1,2, latency:uniform:0.1,0.2, truncate, runner_disconnected")
    assert scenario.failure is FAILURES["runner_disconnected"]
    assert scenario.policy is not None and scenario.policy.kind == "timed"
    assert scenario.latency is not None and scenario.faults == {"truncate"}


def test_a_failed_run_logs_the_failure_not_a_completion(make_client: ClientFactory) -> None:
    client = make_client(policy="polls:1")
    submitted = submit(client, "generation_timeout").json()
    for _ in range(3):
        client.get(submitted["status_url"], headers=KEY)
    logs = client.get(submitted["status_url"], headers=KEY, params={"logs": "1"}).json()["logs"]
    assert logs[-1]["level"] == "ERROR" and logs[-1]["message"] == "Request failed: Generation timed out"
    assert all(log["message"] != "Request completed." for log in logs)


@pytest.mark.parametrize("scenario", ["unauthorized,rate_limited", "no_media_generated,image_load_error"])
def test_a_scenario_with_two_outcomes_is_400(client: TestClient, scenario: str) -> None:
    assert submit(client, scenario).status_code == 400


@pytest.mark.parametrize("scenario", ["latency:1e9", "latency:uniform:2,1", "latency:lognormal:0,-1"])
def test_latency_must_be_bounded_and_ordered(client: TestClient, scenario: str) -> None:
    assert submit(client, scenario).status_code == 400
