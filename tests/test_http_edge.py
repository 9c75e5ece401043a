"""The edge of every exchange (`EdgeMiddleware`) and its shortcut for plain status polls: a poll answered
without the route is answered exactly as the route answers it, and is journaled, counted and refused alike."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import KEY, SEED_REQUESTS, ClientFactory

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = SEED_REQUESTS[ENDPOINT]


def submit(client: TestClient, **headers: str) -> dict[str, Any]:
    response = client.post(f"/{ENDPOINT}", json=BODY, headers={**KEY, **headers})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def answer(response: Any) -> tuple[int, dict[str, str], bytes]:
    return response.status_code, dict(response.headers), response.content


@pytest.mark.parametrize("policy", ["manual", "instant"])
def test_a_plain_poll_is_answered_byte_for_byte_as_the_status_route_answers(
    make_client: ClientFactory, policy: str
) -> None:
    client = make_client(policy=policy)
    submit(client)
    status_url = submit(client)["status_url"]  # the second: IN_QUEUE at position 1, or COMPLETED
    plain = client.get(status_url, headers=KEY)  # the shortcut
    routed = client.get(status_url, params={"logs": "0"}, headers=KEY)  # a query string: the route
    assert answer(plain) == answer(routed)
    assert plain.status_code == (202 if policy == "manual" else 200)
    assert plain.headers["x-fal-request-id"] == plain.json()["request_id"]


def test_plain_polls_are_journaled_like_every_exchange(client: TestClient) -> None:
    submitted = submit(client)
    client.get(submitted["status_url"], headers=KEY)
    [entry] = client.get("/_emulator/journal", params={"method": "GET"}).json()
    assert entry["path"] == f"/fal-ai/veo3/requests/{submitted['request_id']}/status"
    assert entry["status"] == 202
    assert entry["request_id"] == submitted["request_id"]
    assert entry["headers"]["authorization"] == "Key ***"


def test_a_plain_poll_counts_once_towards_a_polls_policy(make_client: ClientFactory) -> None:
    client = make_client(policy="polls:2")
    status_url = submit(client)["status_url"]
    seen = [client.get(status_url, headers=KEY).json()["status"] for _ in range(5)]
    assert seen == ["IN_QUEUE", "IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "COMPLETED"]


@pytest.mark.parametrize(
    ("headers", "path", "status_code"),
    [
        ({}, None, 401),  # no Authorization header
        ({"Authorization": "Basic abc"}, None, 401),
        (KEY, "/fal-ai/veo3/requests/00000000-0000-4000-8000-000000000000/status", 404),
        (KEY, "/fal-ai/veo2/requests/{id}/status", 404),  # another app's path
        ({**KEY, "X-Fal-Emulator-Scenario": "timeout_408"}, None, 408),
    ],
)
def test_polls_the_shortcut_cannot_answer_get_the_routes_answer(
    client: TestClient, headers: dict[str, str], path: str | None, status_code: int
) -> None:
    submitted = submit(client)
    url = submitted["status_url"] if path is None else path.format(id=submitted["request_id"])
    response = client.get(url, headers=headers)
    assert response.status_code == status_code
    assert response.headers["x-fal-request-id"]
    assert "detail" in response.json()


def test_a_scripted_status_outcome_reaches_a_plain_poll(client: TestClient) -> None:
    submitted = submit(client)
    scripted = {"route": "status", "request_id": submitted["request_id"], "outcomes": ["timeout_408"]}
    assert client.post("/_emulator/outcomes", json=scripted).status_code == 200
    assert client.get(submitted["status_url"], headers=KEY).status_code == 408
    assert client.get(submitted["status_url"], headers=KEY).status_code == 202  # the script is used up
