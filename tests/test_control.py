"""The control plane under /_emulator: reset, seed, clock, policies, scripted outcomes, journal, requests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import KEY, ClientFactory

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "p", "image_url": "https://example.com/a.png"}


def submit(client: TestClient, endpoint: str = ENDPOINT) -> dict[str, Any]:
    response = client.post(f"/{endpoint}", json=BODY, headers=KEY)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def status(client: TestClient, submitted: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(submitted["status_url"], headers=KEY).json()
    return answer


def test_reset_forgets_requests_and_replays_the_same_ids(client: TestClient) -> None:
    first = [submit(client)["request_id"] for _ in range(2)]
    assert client.post("/_emulator/reset").json() == {"status": "reset"}
    assert client.get("/_emulator/requests").json() == []
    assert client.get(f"/fal-ai/veo3/requests/{first[0]}/status", headers=KEY).status_code == 404
    assert [submit(client)["request_id"] for _ in range(2)] == first


def test_seed_gives_a_new_deterministic_id_sequence(make_client: ClientFactory) -> None:
    one, two = make_client(), make_client()
    for client in (one, two):
        client.post("/_emulator/seed", json={"seed": 99})
    assert submit(one)["request_id"] == submit(two)["request_id"]
    assert one.post("/_emulator/seed", json={"seed": "x"}).status_code == 400


def test_the_clock_can_be_frozen_advanced_and_scaled(make_client: ClientFactory) -> None:
    client = make_client(policy="timed:10,60")
    frozen = client.post("/_emulator/clock", json={"freeze": True}).json()
    assert frozen["frozen"] is True
    submitted = submit(client)
    assert client.post("/_emulator/clock", json={"advance": 10}).json()["now"] == pytest.approx(frozen["now"] + 10)
    assert status(client, submitted)["status"] == "IN_PROGRESS"
    client.post("/_emulator/clock", json={"advance": 60})
    assert status(client, submitted)["status"] == "COMPLETED"
    assert client.post("/_emulator/clock", json={"scale": 30, "freeze": False}).json()["scale"] == 30
    assert client.post("/_emulator/clock", json={"advance": -1}).status_code == 400


def test_policy_can_be_set_globally_and_per_endpoint(client: TestClient) -> None:
    client.put("/_emulator/policy", json={"policy": "instant", "endpoint_id": "fal-ai/veo2/image-to-video"})
    assert client.get("/_emulator/policy").json() == {
        "default": "polls:1",
        "endpoints": {"fal-ai/veo2/image-to-video": "instant"},
    }
    veo2 = client.post("/fal-ai/veo2/image-to-video", json=BODY, headers=KEY).json()
    assert status(client, veo2)["status"] == "COMPLETED"
    client.put("/_emulator/policy", json={"policy": "manual"})
    assert status(client, submit(client))["status"] == "IN_QUEUE"
    assert client.put("/_emulator/policy", json={"policy": "sometimes"}).status_code == 400


def test_scripted_outcomes_are_consumed_in_order_per_endpoint(make_client: ClientFactory) -> None:
    client = make_client(policy="instant")
    client.post("/_emulator/outcomes", json={"endpoint_id": ENDPOINT, "outcomes": ["no_media_generated", "ok"]})
    client.post("/_emulator/outcomes", json={"outcomes": ["runner_disconnected"]})
    assert client.get("/_emulator/outcomes").json() == {ENDPOINT: 2, "*": 1}
    seen = [status(client, submit(client)).get("error_type") for _ in range(3)]
    assert seen == ["no_media_generated", None, "runner_disconnected"]
    assert status(client, submit(client)).get("error_type") is None


def test_scripted_outcomes_reject_unknown_scenarios_and_endpoints(client: TestClient) -> None:
    assert client.post("/_emulator/outcomes", json={"outcomes": ["nope"]}).status_code == 400
    assert client.post("/_emulator/outcomes", json={"endpoint_id": "fal-ai/x", "outcomes": ["ok"]}).status_code == 404
    assert client.post("/_emulator/outcomes", json={"outcomes": "ok"}).status_code == 400


def test_the_journal_records_each_exchange_with_credentials_redacted(client: TestClient) -> None:
    submitted = submit(client)
    [entry] = client.get("/_emulator/journal", params={"method": "POST"}).json()
    assert entry["path"] == f"/{ENDPOINT}" and entry["status"] == 200
    assert entry["request_id"] == submitted["request_id"]
    assert entry["headers"]["authorization"] == "Key ***"
    raw = json.dumps(BODY, separators=(",", ":")).encode()
    assert entry["body_sha256"] == hashlib.sha256(raw).hexdigest() and entry["body_size"] == len(raw)
    assert client.get("/_emulator/journal", params={"path": "/nowhere"}).json() == []
    client.delete("/_emulator/journal")
    assert client.get("/_emulator/journal").json() == []


def test_requests_can_be_listed_inspected_stepped_completed_and_failed(make_client: ClientFactory) -> None:
    client = make_client(policy="manual")
    first, second, third = submit(client), submit(client), submit(client)
    listed = client.get("/_emulator/requests").json()
    assert [item["request_id"] for item in listed] == [first["request_id"], second["request_id"], third["request_id"]]
    detail = client.get(f"/_emulator/requests/{first['request_id']}").json()
    assert (detail["input"], detail["policy"], detail["status"]) == (BODY, "manual", "IN_QUEUE")
    assert client.post(f"/_emulator/requests/{first['request_id']}/step").json()["status"] == "IN_PROGRESS"
    assert client.post(f"/_emulator/requests/{second['request_id']}/complete").json()["status"] == "COMPLETED"
    assert client.get(second["response_url"], headers=KEY).status_code == 200
    failed = client.post(f"/_emulator/requests/{third['request_id']}/fail", json={"error_type": "generation_timeout"})
    assert failed.json()["status"] == "COMPLETED"
    assert client.get(third["response_url"], headers=KEY).status_code == 504
    again = client.post(f"/_emulator/requests/{third['request_id']}/complete")
    assert again.status_code == 409
    assert client.post(f"/_emulator/requests/{first['request_id']}/explode").status_code == 404
    assert client.post(f"/_emulator/requests/{first['request_id']}/fail", json={"error_type": "x"}).status_code == 400
    assert client.get("/_emulator/requests/00000000-0000-4000-8000-000000000000").status_code == 404


def test_a_requests_policy_can_be_changed_while_it_waits(make_client: ClientFactory) -> None:
    client = make_client(policy="manual")
    submitted = submit(client)
    client.put(f"/_emulator/requests/{submitted['request_id']}/policy", json={"policy": "instant"})
    assert status(client, submitted)["status"] == "COMPLETED"


def test_a_control_token_guards_the_control_plane(make_client: ClientFactory) -> None:
    client = make_client(control_token="s3cret")
    assert client.post("/_emulator/reset").status_code == 401
    assert client.post("/_emulator/reset", headers={"X-Fal-Emulator-Token": "s3cret"}).status_code == 200
    assert client.get("/_emulator/health").status_code == 200


def test_control_bodies_must_be_json_objects(client: TestClient) -> None:
    response = client.post("/_emulator/clock", content=b"[1]")
    assert response.status_code == 400
    assert response.json()["error_type"] == "bad_request"


def test_reset_puts_back_the_default_policy_and_the_clock(make_client: ClientFactory) -> None:
    client = make_client(policy="timed:1,2")
    client.put("/_emulator/policy", json={"policy": "manual"})
    client.post("/_emulator/clock", json={"freeze": True, "scale": 9})
    client.post("/_emulator/reset")
    assert client.get("/_emulator/policy").json() == {"default": "timed:1,2", "endpoints": {}}
    clock = client.get("/_emulator/clock").json()
    assert (clock["frozen"], clock["scale"]) == (False, 1.0)


@pytest.mark.parametrize(
    "payload",
    [{"advance": 1e20}, {"scale": 1e308}, {"freeze": "yes"}, {"advance": "NaN"}],
)
def test_out_of_range_clock_changes_are_400_and_leave_the_emulator_working(
    client: TestClient, payload: dict[str, Any]
) -> None:
    assert client.post("/_emulator/clock", json=payload).status_code == 400
    assert client.get("/_emulator/clock").status_code == 200
    submit(client)


def test_non_finite_json_in_control_bodies_is_400(client: TestClient) -> None:
    response = client.post("/_emulator/clock", content=b'{"advance": 1e309}')
    assert response.status_code == 400
    assert client.post("/_emulator/seed", json={"seed": -1}).status_code == 400


def test_the_journal_redacts_every_credential_header(client: TestClient) -> None:
    headers = {**KEY, "Proxy-Authorization": "Basic c2VjcmV0", "X-Api-Key": "k", "x-fal-cdn-token": "t"}
    client.post(f"/{ENDPOINT}", json=BODY, headers=headers)
    [entry] = client.get("/_emulator/journal", params={"method": "POST"}).json()
    shown = entry["headers"]
    assert (shown["proxy-authorization"], shown["x-api-key"], shown["x-fal-cdn-token"]) == ("Basic ***", "***", "***")
