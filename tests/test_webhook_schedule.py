"""Webhook delivery as fal documents it: 10 retries over 2 hours, and `payload_error` when the payload cannot be
serialised (docs.fal.ai, model endpoints -> webhooks). Time is the emulator's frozen clock, moved by the test."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from fal_emulator.queue import Outcome
from fal_emulator.webhooks import FIRST_RETRY_DELAY, MAX_RETRIES, RETRY_WINDOW, payload, retry_delay
from tests.conftest import KEY
from tests.test_webhooks import BODY, ENDPOINT, deliveries, emulator, submit, verify
from tests.webhook_receiver import Receiver

__all__ = ["emulator"]  # the fixture this module uses (`receiver` is tests/conftest.py's)


def test_the_schedule_is_ten_retries_within_two_hours() -> None:
    waits = [retry_delay(attempt) for attempt in range(1, MAX_RETRIES + 1)]
    assert waits == [FIRST_RETRY_DELAY * 2**n for n in range(10)] == [7, 14, 28, 56, 112, 224, 448, 896, 1792, 3584]
    assert sum(waits) == 7161 <= RETRY_WINDOW == 2 * 3600


def test_a_failing_receiver_gets_the_first_attempt_and_ten_retries(emulator: TestClient, receiver: Receiver) -> None:
    receiver.statuses = [500] * 20
    emulator.post("/_emulator/clock", json={"freeze": True})
    submitted = submit(emulator, receiver.url)
    for attempt in range(1, MAX_RETRIES + 2):
        _, body = receiver.next()
        assert json.loads(body)["request_id"] == submitted["request_id"]
        [*_, record] = deliveries(emulator, attempt)
        assert record["attempt"] == attempt and record["status"] == 500
        if attempt <= MAX_RETRIES:
            assert record["next_attempt_in"] == retry_delay(attempt)
            emulator.post("/_emulator/clock", json={"advance": record["next_attempt_in"]})
    assert "next_attempt_in" not in record  # the eleventh attempt was the last
    emulator.post("/_emulator/clock", json={"advance": RETRY_WINDOW})
    assert len(emulator.get("/_emulator/webhooks").json()) == MAX_RETRIES + 1
    assert receiver.received.empty()


def test_payload_error_sends_a_null_payload_and_the_reason(emulator: TestClient, receiver: Receiver) -> None:
    submitted = submit(emulator, receiver.url, scenario="payload_error")
    headers, body = receiver.next()
    sent = json.loads(body)
    assert sent["status"] == "OK" and sent["payload"] is None
    assert isinstance(sent["payload_error"], str) and sent["payload_error"]
    assert sent["request_id"] == sent["gateway_request_id"] == submitted["request_id"]
    assert verify(headers, body, emulator.get("/.well-known/jwks.json").json())
    # The result is still there: "use the queue endpoint to retrieve the response".
    result = emulator.get(submitted["response_url"], headers=KEY)
    assert result.status_code == 200 and result.json()["video"]["content_type"] == "video/mp4"


def test_payload_error_with_a_failed_request_keeps_its_error(emulator: TestClient, receiver: Receiver) -> None:
    submit(emulator, receiver.url, scenario="no_media_generated,payload_error")
    sent = json.loads(receiver.next()[1])
    assert (sent["status"], sent["error"], sent["payload"]) == ("ERROR", "Invalid status code: 422", None)
    assert "payload_error" in sent


def test_without_the_scenario_there_is_no_payload_error_key() -> None:
    body = payload("r", Outcome.success({"video": {"url": "u"}}))
    assert body == {"request_id": "r", "gateway_request_id": "r", "status": "OK", "payload": {"video": {"url": "u"}}}


def test_payload_error_cannot_meet_a_status_poll(emulator: TestClient) -> None:
    answer = emulator.post("/_emulator/outcomes", json={"route": "status", "outcomes": ["payload_error"]})
    assert answer.status_code == 400
    plain = emulator.post(f"/{ENDPOINT}", json=BODY, headers={**KEY, "X-Fal-Emulator-Scenario": "payload_error"})
    assert plain.status_code == 200 and "gateway_request_id" not in plain.json()  # no webhook: nothing to change


def test_a_retried_request_names_its_last_attempt_in_gateway_request_id(
    emulator: TestClient, receiver: Receiver
) -> None:
    submitted = submit(emulator, receiver.url, scenario="runner_disconnected:1")
    assert submitted["gateway_request_id"] == submitted["request_id"]  # one attempt so far
    sent = json.loads(receiver.next()[1])
    assert sent["status"] == "OK" and sent["request_id"] == submitted["request_id"]
    assert sent["gateway_request_id"] not in (None, submitted["request_id"])


@pytest.mark.parametrize("token", ["content_policy_violation:2", "runner_server_error:1", "runner_disconnected:0"])
def test_only_runner_failures_that_fal_retries_take_a_count(emulator: TestClient, token: str) -> None:
    answer = emulator.post(f"/{ENDPOINT}", json=BODY, headers={**KEY, "X-Fal-Emulator-Scenario": token})
    assert answer.status_code == 400 and answer.json()["error_type"] == "bad_request"
