"""Transport faults, seeded and repeatable: latency, a dropped connection, a truncated or slow MP4."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fal_emulator.scenarios import Latency, parse_scenario
from fal_emulator.testing import EmulatorProcess

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "p", "image_url": "https://example.com/a.png"}
KEY = {"Authorization": "Key k"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("faults"), policy="instant") as process:
        yield process


@pytest.fixture
def http(server: EmulatorProcess) -> Iterator[httpx.Client]:
    assert server.listening is not None
    with httpx.Client(base_url=server.listening.http_url, headers=KEY) as client:
        yield client


def submit(http: httpx.Client, scenario: str) -> Any:
    return http.post(f"/{ENDPOINT}", json=BODY, headers={"X-Fal-Emulator-Scenario": scenario})


def test_latency_draws_are_seeded_and_repeatable() -> None:
    for latency in (Latency("uniform", 0.1, 0.3), Latency("lognormal", -2.0, 0.5)):
        first = [latency.sample(random.Random(5)) for _ in range(3)]
        assert first == [latency.sample(random.Random(5)) for _ in range(3)]
    assert parse_scenario("latency:0.25").latency == Latency("fixed", 0.25)
    assert parse_scenario("latency:uniform:0.1,0.3").latency == Latency("uniform", 0.1, 0.3)


def test_latency_delays_the_answer_at_least_that_long(http: httpx.Client) -> None:
    start = time.monotonic()
    response = submit(http, "latency:0.3")
    assert response.status_code == 200
    assert time.monotonic() - start >= 0.3


def test_drop_closes_the_connection_before_a_complete_answer(http: httpx.Client) -> None:
    with pytest.raises(httpx.TransportError):
        submit(http, "drop")
    assert http.get("/_emulator/health").status_code == 200  # the server itself is fine


def test_a_truncated_video_stops_half_way_through_its_content_length(http: httpx.Client) -> None:
    url = http.get(submit(http, "truncate").json()["response_url"]).json()["video"]["url"]
    assert url.endswith("?fault=truncate")
    with pytest.raises(httpx.TransportError):
        http.get(url)


def test_a_slow_video_arrives_whole(http: httpx.Client) -> None:
    video = http.get(submit(http, "slow").json()["response_url"]).json()["video"]
    response = http.get(video["url"])
    assert response.status_code == 200 and len(response.content) == video["file_size"]


def test_faults_from_the_scenario_header_apply_to_any_route(http: httpx.Client) -> None:
    request_id = submit(http, "ok").json()["request_id"]
    with pytest.raises(httpx.TransportError):
        http.get(f"/fal-ai/veo3/requests/{request_id}/status", headers={"X-Fal-Emulator-Scenario": "drop"})


def test_scripted_drop_and_latency_apply_to_the_submit_they_meet(http: httpx.Client) -> None:
    http.post("/_emulator/outcomes", json={"endpoint_id": ENDPOINT, "outcomes": ["drop", "latency:0.3", "ok"]})
    with pytest.raises(httpx.TransportError):
        http.post(f"/{ENDPOINT}", json=BODY)
    start = time.monotonic()
    assert http.post(f"/{ENDPOINT}", json=BODY).status_code == 200
    assert time.monotonic() - start >= 0.3
    assert http.get("/_emulator/outcomes").json() == {ENDPOINT: 1}  # the "ok" is still to come
    http.delete("/_emulator/outcomes")
