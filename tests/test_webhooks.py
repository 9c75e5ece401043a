"""Webhooks: fal's payloads, signed as fal signs them, verified the way fal's docs tell receivers to."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from fal_emulator.webhooks import allowed
from tests.conftest import CATALOG, KEY
from tests.webhook_receiver import Receiver

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "p", "image_url": "https://example.com/a.png"}


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(seed=7, policy="instant", state_dir=tmp_path), catalog=CATALOG)
    # The signature timestamp is the emulator's clock; the README's receiver compares it with time.time().
    with TestClient(app) as client:  # the lifespan runs the delivery loop
        yield client


def readme_verifier() -> Callable[[dict[str, str], bytes, dict[str, Any]], bool]:
    """The receiver-side check shown in the README, run as it is written there."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in readme.split("```python\n")[1:]]
    [code] = [block for block in blocks if block.startswith("# verify_fal_webhook.py")]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    verifier: Callable[[dict[str, str], bytes, dict[str, Any]], bool] = namespace["verify_fal_webhook"]
    return verifier


verify = readme_verifier()


def deliveries(client: TestClient, count: int) -> list[dict[str, Any]]:
    """The delivery records, once there are `count` of them (the loop records each right after its attempt)."""
    for _ in range(100_000):
        attempts: list[dict[str, Any]] = client.get("/_emulator/webhooks").json()
        if len(attempts) >= count:
            return attempts
    raise AssertionError(f"fewer than {count} webhook deliveries were recorded")


def submit(client: TestClient, url: str, scenario: str | None = None) -> dict[str, Any]:
    headers = {**KEY, **({"X-Fal-Emulator-Scenario": scenario} if scenario else {})}
    response = client.post(f"/{ENDPOINT}", params={"fal_webhook": url}, json=BODY, headers=headers)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def test_a_completed_request_posts_a_signed_ok_payload(emulator: TestClient, receiver: Receiver) -> None:
    submitted = submit(emulator, receiver.url)
    assert submitted["gateway_request_id"] == submitted["request_id"]
    headers, body = receiver.next()
    payload = json.loads(body)
    assert payload["status"] == "OK" and payload["request_id"] == submitted["request_id"]
    assert payload["gateway_request_id"] == submitted["request_id"]
    assert payload["payload"] == emulator.get(submitted["response_url"], headers=KEY).json()
    assert headers["x-fal-webhook-request-id"] == submitted["request_id"]
    assert verify(headers, body, emulator.get("/.well-known/jwks.json").json())
    assert not verify(headers, body + b" ", emulator.get("/.well-known/jwks.json").json())


def test_a_failed_request_posts_an_error_payload_matching_status_and_result(
    emulator: TestClient, receiver: Receiver
) -> None:
    submitted = submit(emulator, receiver.url, scenario="content_policy_violation")
    _, body = receiver.next()
    payload = json.loads(body)
    result = emulator.get(submitted["response_url"], headers=KEY)
    assert payload["status"] == "ERROR"
    assert payload["error"] == "Invalid status code: 422" and result.status_code == 422
    assert payload["payload"] == result.json()
    status = emulator.get(submitted["status_url"], headers=KEY).json()
    assert status["error_type"] == payload["payload"]["detail"][0]["type"] == "content_policy_violation"


def test_failed_deliveries_retry_with_backoff_on_the_emulator_clock(emulator: TestClient, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    emulator.post("/_emulator/clock", json={"freeze": True})
    submitted = submit(emulator, receiver.url)
    receiver.next()
    emulator.post("/_emulator/clock", json={"advance": 7})
    receiver.next()
    emulator.post("/_emulator/clock", json={"advance": 14})
    headers, body = receiver.next()
    assert verify(headers, body, emulator.get("/.well-known/jwks.json").json())
    attempts = deliveries(emulator, 3)  # the third is recorded right after the receiver answered
    assert [(a["attempt"], a["status"], a.get("next_attempt_in")) for a in attempts] == [
        (1, 500, 7.0),
        (2, 503, 14.0),
        (3, 200, None),
    ]
    journal = emulator.get("/_emulator/journal", params={"kind": "webhook"}).json()
    assert [entry["request_id"] for entry in journal] == [submitted["request_id"]] * 3


def test_targets_beyond_loopback_are_never_contacted(emulator: TestClient) -> None:
    submitted = submit(emulator, "http://example.com/hook")
    attempts = deliveries(emulator, 1)
    assert attempts[0]["request_id"] == submitted["request_id"]
    assert attempts[0]["status"] is None and "not allowed" in attempts[0]["error"]


def test_the_allowlist_admits_named_hosts_and_loopback_only() -> None:
    assert allowed("http://127.0.0.1:9/x", ()) and allowed("http://localhost/x", ()) and allowed("https://[::1]/", ())
    assert not allowed("http://10.0.0.1/x", ()) and not allowed("ftp://127.0.0.1/x", ())
    assert allowed("https://hooks.example.com/x", ("hooks.example.com",))


def test_the_signing_key_survives_a_restart(tmp_path: Path) -> None:
    keys = []
    for _ in range(2):
        with TestClient(create_app(Settings(state_dir=tmp_path), catalog=CATALOG)) as client:
            keys.append(client.get("/.well-known/jwks.json").json())
    assert keys[0] == keys[1]
    assert keys[0]["keys"][0]["kty"] == "OKP" and keys[0]["keys"][0]["crv"] == "Ed25519"


def test_retries_outlive_the_result_they_deliver(tmp_path: Path, receiver: Receiver) -> None:
    """fal retries a webhook for 2 hours; the result itself is kept 1 hour (here 20 s): a retry after it
    expired still sends the payload, and a request that expired before completing its first attempt is
    never delivered (and stops nothing else)."""
    app = create_app(Settings(seed=7, policy="instant", state_dir=tmp_path, retention="20"), catalog=CATALOG)
    with TestClient(app) as emulator:
        receiver.statuses = [500, 500]
        emulator.post("/_emulator/clock", json={"freeze": True})
        submitted = submit(emulator, receiver.url)
        first = receiver.next()
        emulator.post("/_emulator/clock", json={"advance": 7})
        receiver.next()
        emulator.post("/_emulator/clock", json={"advance": 14})  # the third attempt is due after the result expired
        assert receiver.next()[1] == first[1]
        assert emulator.get(f"/fal-ai/veo3/requests/{submitted['request_id']}/status", headers=KEY).status_code == 404
        attempts = deliveries(emulator, 3)
        assert [a["status"] for a in attempts] == [500, 500, 200]
        assert {a["request_id"] for a in attempts} == {submitted["request_id"]}
