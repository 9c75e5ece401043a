"""Faults on every queue route: scripted outcomes and the scenario header reach status polls, status streams,
result fetches and cancels, one per call, then calls are answered normally again (in-process, over ASGI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from tests.conftest import CATALOG, KEY, SEED_REQUESTS

ENDPOINT = "fal-ai/veo3/image-to-video"
OTHER = "fal-ai/veo3.1/fast/image-to-video"
SCENARIO = "X-Fal-Emulator-Scenario"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(seed=7, policy="polls:1", state_dir=tmp_path), catalog=CATALOG)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def submit(client: TestClient, endpoint: str = ENDPOINT) -> dict[str, Any]:
    response = client.post(f"/{endpoint}", json=SEED_REQUESTS[endpoint], headers=KEY)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def script(client: TestClient, outcomes: list[str], **fields: str) -> Any:
    return client.post("/_emulator/outcomes", json={"outcomes": outcomes, **fields})


def test_the_next_two_polls_of_a_request_get_an_ingress_503_then_normal_answers(client: TestClient) -> None:
    submitted = submit(client)
    request_id = submitted["request_id"]
    assert script(client, ["ingress_503", "ingress_503"], route="status", request_id=request_id).status_code == 200
    assert client.get("/_emulator/outcomes").json() == {f"status:{request_id}": 2}
    answers = [client.get(submitted["status_url"], headers=KEY) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [503, 503, 202]
    for gateway in answers[:2]:
        assert gateway.headers["content-type"].startswith("text/html")
        assert "nginx" in gateway.text
        assert "x-fal-request-id" not in gateway.headers  # what makes fal_client treat it as ingress
    # The faulted polls never reached the queue: a `polls:1` request is still IN_QUEUE after them.
    assert answers[2].json()["status"] == "IN_QUEUE"
    assert client.get("/_emulator/outcomes").json() == {}
    # The journal files the gateway's answers under the request they were about, though they carry no id.
    journaled = client.get("/_emulator/journal", params={"request_id": request_id, "method": "GET"}).json()
    assert [entry["status"] for entry in journaled] == [503, 503, 202]


@pytest.mark.parametrize(
    ("token", "code", "body"),
    [("timeout_408", 408, {"detail": "Request Timeout"}), ("conflict_409", 409, {"detail": "Conflict"})],
)
@pytest.mark.parametrize("route", ["status", "result", "cancel"])
def test_408_and_409_reach_every_route_with_a_request_id(
    client: TestClient, route: str, token: str, code: int, body: dict[str, str]
) -> None:
    submitted = submit(client)
    script(client, [token], route=route, endpoint_id=ENDPOINT)
    url = {"status": submitted["status_url"], "result": submitted["response_url"], "cancel": submitted["cancel_url"]}
    method = "PUT" if route == "cancel" else "GET"
    answer = client.request(method, url[route], headers=KEY)
    assert (answer.status_code, answer.json()) == (code, body)
    assert answer.headers["x-fal-request-id"] == submitted["request_id"]
    again = client.request(method, url[route], headers=KEY)
    assert again.status_code != code


@pytest.mark.parametrize("route", ["status", "stream", "result", "cancel"])
@pytest.mark.parametrize("token", ["content_policy_violation", "no_media_generated", "runner_disconnected", "locked"])
def test_what_fal_never_answers_to_a_status_result_or_cancel_call_is_refused(
    client: TestClient, route: str, token: str
) -> None:
    """fal's status never answers a model error (a failed request is COMPLETED + error), a locked user's status
    calls still answer 200 (fal-ai/fal#1147), and a result answers the request's own outcome every time."""
    submitted = submit(client)
    answer = script(client, ["ok", token], route=route, request_id=submitted["request_id"])
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert f"cannot meet a {route} call" in detail
    if token == "locked":
        assert "refused at submit" in detail and "still answer" in detail
    else:
        assert "an error type belongs to the request" in detail
        assert "POST /_emulator/requests/{id}/fail" in detail and "route submit" in detail
    assert "ingress_503" in detail and "timeout_408" in detail  # what to use there instead
    assert client.get("/_emulator/outcomes").json() == {}  # nothing of the refused script was kept
    status = client.get(submitted["status_url"], headers=KEY)
    assert status.status_code == 202 and "error" not in status.json()


def test_a_request_that_really_failed_answers_its_error_on_every_result_fetch(client: TestClient) -> None:
    """What a test that wants a failing result uses instead: the error at submit (or `fail`)."""
    response = client.post(
        f"/{ENDPOINT}", json=SEED_REQUESTS[ENDPOINT], headers={**KEY, SCENARIO: "instant,no_media_generated"}
    )
    submitted = response.json()
    status = client.get(submitted["status_url"], headers=KEY).json()
    assert (status["status"], status["error_type"]) == ("COMPLETED", "no_media_generated")
    answers = [client.get(submitted["response_url"], headers=KEY) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [422, 422]
    assert answers[0].json() == answers[1].json()


def test_the_scenario_header_never_answers_a_poll_with_locked_or_an_error_type(client: TestClient) -> None:
    submitted = submit(client)
    for token in ("locked", "runner_disconnected", "content_policy_violation"):
        answer = client.get(submitted["status_url"], headers={**KEY, SCENARIO: token})
        assert answer.status_code in (200, 202) and "error" not in answer.json()


def test_a_script_emptied_by_its_calls_is_forgotten(client: TestClient) -> None:
    submitted = submit(client)
    emulator = client.app.state.emulator  # type: ignore[attr-defined]
    script(client, ["ingress_503"], route="status", request_id=submitted["request_id"])
    script(client, [], route="result", request_id=submitted["request_id"])
    assert len(emulator.route_outcomes) == 1
    assert client.get(submitted["status_url"], headers=KEY).status_code == 503
    assert emulator.route_outcomes == {}


def test_a_stream_meets_its_fault_before_it_starts(client: TestClient) -> None:
    submitted = submit(client)
    script(client, ["rate_limited"], route="stream")
    answer = client.get(submitted["status_url"] + "/stream", headers=KEY)
    assert answer.status_code == 429
    assert answer.json()["error_type"] == "concurrent_requests_limit"
    with client.stream("GET", submitted["status_url"] + "/stream", headers=KEY) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")


def test_a_script_for_one_endpoint_leaves_other_endpoints_alone(client: TestClient) -> None:
    mine, other = submit(client), submit(client, OTHER)
    script(client, ["ingress_502"], route="result", endpoint_id=ENDPOINT)
    assert client.get(other["response_url"], headers=KEY).status_code == 400  # not ready, not faulted
    assert client.get(mine["response_url"], headers=KEY).status_code == 502


def test_a_request_script_comes_before_an_endpoint_script(client: TestClient) -> None:
    submitted = submit(client)
    script(client, ["conflict_409"], route="status", endpoint_id=ENDPOINT)
    script(client, ["timeout_408"], route="status", request_id=submitted["request_id"])
    codes = [client.get(submitted["status_url"], headers=KEY).status_code for _ in range(3)]
    assert codes == [408, 409, 202]


def test_a_dropped_poll_closes_the_connection(client: TestClient) -> None:
    submitted = submit(client)
    script(client, ["drop"], route="status")
    dropped = client.get(submitted["status_url"], headers=KEY)  # over a socket: a transport error
    assert (dropped.status_code, dropped.headers["content-length"], dropped.content) == (200, "1024", b"")
    assert client.get(submitted["status_url"], headers=KEY).status_code == 202


def test_the_scenario_header_rejects_any_call_but_its_error_types_act_only_at_submit(client: TestClient) -> None:
    submitted = submit(client)
    assert client.get(submitted["status_url"], headers={**KEY, SCENARIO: "ingress_504"}).status_code == 504
    assert client.put(submitted["cancel_url"], headers={**KEY, SCENARIO: "timeout_408"}).status_code == 408
    # An error type or a policy describes a request: on a poll it changes nothing.
    quiet = client.get(submitted["status_url"], headers={**KEY, SCENARIO: "content_policy_violation,manual"})
    assert quiet.status_code == 202
    bad = client.get(submitted["status_url"], headers={**KEY, SCENARIO: "no_such_token"})
    assert bad.status_code == 400 and bad.json()["error_type"] == "bad_request"


@pytest.mark.parametrize(
    ("fields", "outcomes", "code"),
    [
        ({"route": "status"}, ["manual"], 400),  # a policy describes a request, not a poll
        ({"route": "result"}, ["truncate"], 400),
        ({"route": "cancel"}, ["queue_full"], 400),
        ({"route": "poll"}, ["ok"], 400),
        ({"route": "submit", "request_id": "x"}, ["ok"], 400),
        ({"route": "status", "request_id": "no-such-request"}, ["ok"], 404),
        ({"route": "status", "endpoint_id": "fal-ai/no-such-model"}, ["ok"], 404),
    ],
)
def test_scripts_that_cannot_apply_are_refused(
    client: TestClient, fields: dict[str, str], outcomes: list[str], code: int
) -> None:
    answer = script(client, outcomes, **fields)
    assert answer.status_code == code, answer.text
    assert client.get("/_emulator/outcomes").json() == {}


def test_reset_and_delete_forget_route_scripts(client: TestClient) -> None:
    script(client, ["ingress_503"], route="status")
    script(client, ["ok"], route="submit")
    assert client.get("/_emulator/outcomes").json() == {"status:*": 1, "*": 1}
    assert client.delete("/_emulator/outcomes").json() == {}
    script(client, ["ingress_503"], route="result")
    client.post("/_emulator/reset")
    assert client.get("/_emulator/outcomes").json() == {}
