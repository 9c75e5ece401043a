"""fal_client 1.0.3 meets every failure mode: the exception it raises and its retry rules (fal-protocol §6.1).

- answers that carry `x-fal-request-id` are not retried;
- an ingress-style 502/503/504 (no `x-fal-request-id`, "nginx" in the body) is retried;
- a 429 is retried, and succeeds when scripted as "succeed after N";
- a 504 with `X-Fal-Request-Timeout-Type` is never retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fal_emulator.failures import FAILURES
from fal_emulator.testing import EmulatorProcess

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "p", "image_url": "https://example.com/a.png"}
REJECTIONS = {"unauthorized": 401, "locked": 403}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("state"), policy="instant") as process:
        yield process


@pytest.fixture
def control(server: EmulatorProcess) -> Iterator[httpx.Client]:
    assert server.listening is not None
    with httpx.Client(base_url=f"{server.listening.http_url}/_emulator") as client:
        client.post("/reset")
        yield client


def attempts(control: httpx.Client, method: str, path_suffix: str = "") -> int:
    journal = control.get("/journal", params={"method": method}).json()
    return sum(1 for entry in journal if entry["path"].endswith(path_suffix))


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_subscribe_raises_the_error_with_its_status_and_type(fal: Any, control: httpx.Client, name: str) -> None:
    with pytest.raises(fal.FalClientHTTPError) as caught:
        fal.subscribe(ENDPOINT, arguments=BODY, headers={"X-Fal-Emulator-Scenario": name})
    assert caught.value.status_code == FAILURES[name].status_code
    assert caught.value.error_type == name
    assert attempts(control, "GET", "/requests/" + caught.value.response_headers["x-fal-request-id"]) == 1


@pytest.mark.parametrize(("name", "status"), list(REJECTIONS.items()))
def test_auth_and_billing_rejections_raise_at_submit(fal: Any, control: httpx.Client, name: str, status: int) -> None:
    with pytest.raises(fal.FalClientHTTPError) as caught:
        fal.submit(ENDPOINT, arguments=BODY, headers={"X-Fal-Emulator-Scenario": name})
    assert caught.value.status_code == status
    assert attempts(control, "POST") == 1


def test_the_status_shows_the_error_before_the_result_is_fetched(fal: Any) -> None:
    handle = fal.submit(ENDPOINT, arguments=BODY, headers={"X-Fal-Emulator-Scenario": "runner_disconnected"})
    status = handle.status(with_logs=True)
    assert isinstance(status, fal.Completed)
    assert (status.error, status.error_type) == ("Runner disconnected", "runner_disconnected")


@pytest.mark.parametrize("code", [502, 503, 504])
def test_an_ingress_error_is_retried_until_it_clears(fal: Any, control: httpx.Client, code: int) -> None:
    control.post("/outcomes", json={"endpoint_id": ENDPOINT, "outcomes": [f"ingress_{code}", "ok"]})
    output = fal.subscribe(ENDPOINT, arguments=BODY)
    assert output["video"]["content_type"] == "video/mp4"
    assert attempts(control, "POST") == 2


def test_a_server_error_carrying_a_request_id_is_not_retried(fal: Any, control: httpx.Client) -> None:
    with pytest.raises(fal.FalClientHTTPError) as caught:
        fal.subscribe(ENDPOINT, arguments=BODY, headers={"X-Fal-Emulator-Scenario": "runner_server_error"})
    assert caught.value.status_code == 500
    assert attempts(control, "GET", "/requests/" + caught.value.response_headers["x-fal-request-id"]) == 1


def test_a_429_is_retried_and_succeeds_after_n(fal: Any, control: httpx.Client) -> None:
    control.post("/outcomes", json={"endpoint_id": ENDPOINT, "outcomes": ["rate_limited", "rate_limited", "ok"]})
    output = fal.subscribe(ENDPOINT, arguments=BODY)
    assert output["video"]["file_name"] == "1280x720_8s_audio.mp4"
    assert attempts(control, "POST") == 3


def test_a_user_start_timeout_is_a_504_that_is_not_retried(fal: Any, control: httpx.Client) -> None:
    control.post("/clock", json={"scale": 50})  # the 10 s queue and the 2 s deadline pass in 0.04 s
    try:
        with pytest.raises(fal.FalClientHTTPError) as caught:
            fal.subscribe(ENDPOINT, arguments=BODY, headers={"X-Fal-Emulator-Scenario": "timed:10,1"}, start_timeout=2)
    finally:
        control.post("/clock", json={"scale": 1})
    assert caught.value.status_code == 504
    assert caught.value.response_headers["x-fal-request-timeout-type"] == "user"
    assert caught.value.error_type == "request_timeout"
    assert attempts(control, "GET", "/requests/" + caught.value.response_headers["x-fal-request-id"]) == 1
