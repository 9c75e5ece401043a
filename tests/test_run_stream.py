"""`POST /run/{endpoint id}/stream` (in-process): keepalive comments while the request runs, then the output as
the one `data:` event; an error known at submit is fal's JSON answer; one that comes later ends the stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from tests.conftest import CATALOG, KEY, SEED_REQUESTS

ENDPOINT = "fal-ai/veo3/image-to-video"
URL = f"/run/{ENDPOINT}/stream"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(seed=7, policy="timed:0.2,0.2", stream_keepalive=0.05, time_scale=1.0, state_dir=tmp_path)
    with TestClient(create_app(settings, catalog=CATALOG), raise_server_exceptions=False) as client:
        yield client


def test_keepalives_then_the_output_then_the_end(client: TestClient) -> None:
    with client.stream("POST", URL, json=SEED_REQUESTS[ENDPOINT], headers=KEY) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        request_id = response.headers["x-fal-request-id"]
        assert response.headers["x-fal-billable-units"] == "12"
        lines = list(response.iter_lines())
    assert ": keepalive" in lines
    [data] = [line for line in lines if line.startswith("data: ")]
    output = json.loads(data[len("data: ") :])
    assert output["video"]["file_name"] == "1280x720_8s_audio.mp4"
    assert client.get(f"/_emulator/requests/{request_id}").json()["status"] == "COMPLETED"


def test_an_error_known_at_submit_is_a_json_answer(client: TestClient) -> None:
    headers = {**KEY, "X-Fal-Emulator-Scenario": "content_policy_violation"}
    response = client.post(URL, json=SEED_REQUESTS[ENDPOINT], headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "content_policy_violation"
    assert client.post(URL, json={"prompt": "no image"}, headers=KEY).status_code == 422


def test_a_request_that_fails_after_the_stream_began_ends_with_an_error_event(client: TestClient) -> None:
    # Its start deadline (1.5 s) passes while it waits 10 s in the queue: a 504 request_timeout.
    headers = {**KEY, "X-Fal-Emulator-Scenario": "timed:10,1", "X-Fal-Request-Timeout": "1.5"}
    client.post("/_emulator/clock", json={"scale": 20})
    with client.stream("POST", URL, json=SEED_REQUESTS[ENDPOINT], headers=headers) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    error = lines.index("event: error")
    body = json.loads(lines[error + 1][len("data: ") :])
    assert body == {"detail": "Request timed out", "error_type": "request_timeout"}
