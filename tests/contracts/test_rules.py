"""fal's rules as pure functions (contracts.rules) and the SSE reader (contracts.sse)."""

from __future__ import annotations

import pytest

from fal_emulator.contracts import RULES, rules
from fal_emulator.contracts.sse import parse_events

QUEUED = {"status": "IN_QUEUE", "request_id": "r", "queue_position": 0}
RUNNING = {"status": "IN_PROGRESS", "request_id": "r", "logs": None}
DONE = {"status": "COMPLETED", "request_id": "r", "logs": None, "metrics": {"inference_time": 1.5}}
ITEM = {"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"}


def test_every_rule_has_a_one_line_explanation() -> None:
    assert all(name.isidentifier() and text and "\n" not in text for name, text in RULES.items())


def test_a_missing_or_empty_request_id_header_is_named() -> None:
    assert rules.request_id_header({"x-fal-request-id": "abc"}) is None
    assert rules.request_id_header({"x-fal-request-id": ["abc"]}) is None
    assert rules.request_id_header({}) == "the answer has no x-fal-request-id header"
    assert rules.request_id_header({"x-fal-request-id": " "}) is not None


@pytest.mark.parametrize(
    ("status_code", "body"),
    [
        (422, {"detail": [ITEM]}),
        (404, {"detail": "Path /x not found"}),
        (404, {"status": "NOT_FOUND"}),
        (400, {"status": "ALREADY_COMPLETED"}),
        (499, {"detail": "Request cancelled by the client.", "error_type": "client_cancelled"}),
    ],
)
def test_fals_error_shapes_are_accepted(status_code: int, body: object) -> None:
    assert rules.error_shape(status_code, body) is None


@pytest.mark.parametrize(
    ("status_code", "body", "complaint"),
    [
        (422, {"detail": "bad"}, "422 answer must carry a detail list"),
        (422, {"detail": [{"loc": "body", "msg": "m", "type": "t"}]}, "each detail item"),
        (400, {"error": "bad"}, "needs a detail"),
        (401, "Unauthorized", "must be a JSON object"),
    ],
)
def test_other_error_shapes_are_named(status_code: int, body: object, complaint: str) -> None:
    message = rules.error_shape(status_code, body)
    assert message is not None
    assert complaint in message


def test_status_code_follows_the_state() -> None:
    assert rules.status_code_by_state(202, QUEUED) is None
    assert rules.status_code_by_state(202, RUNNING) is None
    assert rules.status_code_by_state(200, DONE) is None
    assert rules.status_code_by_state(200, RUNNING) == "status IN_PROGRESS must be answered with HTTP 202, got 200"
    assert rules.status_code_by_state(202, DONE) == "status COMPLETED must be answered with HTTP 200, got 202"
    assert rules.status_code_by_state(200, {"status": "FAILED"}) is not None


def test_cancel_codes_and_bodies_agree() -> None:
    assert rules.cancel_code(202, {"status": "CANCELLATION_REQUESTED"}) is None
    assert rules.cancel_code(400, {"status": "ALREADY_COMPLETED"}) is None
    assert rules.cancel_code(404, {"status": "NOT_FOUND", "detail": "x"}) is None
    assert rules.cancel_code(200, None) == "cancel must answer 202, 400 or 404, got 200 with None"
    assert rules.cancel_code(202, {"status": "ALREADY_COMPLETED"}) is not None


def test_the_result_is_never_a_running_status() -> None:
    assert rules.result_code(200, {"video": {"url": "u"}}) is None
    assert rules.result_code(400, {"detail": "Request is still in progress"}) is None
    assert rules.result_code(200, RUNNING) is not None
    assert rules.result_code(400, {}) is not None


def test_queue_position_only_while_queued() -> None:
    assert rules.queue_position(QUEUED) is None
    assert rules.queue_position(RUNNING) is None
    assert rules.queue_position({"status": "IN_QUEUE"}) == "an IN_QUEUE status must carry queue_position"
    assert rules.queue_position({**QUEUED, "queue_position": -1}) is not None
    assert rules.queue_position({**QUEUED, "queue_position": True}) is not None
    assert rules.queue_position({**RUNNING, "queue_position": 2}) is not None


def test_the_logs_key_follows_the_state_and_the_logs_flag() -> None:
    line = {"message": "Loading", "timestamp": "2026-01-01T00:00:00.000Z"}
    assert rules.logs_key(QUEUED, logs_requested=True) is None
    assert rules.logs_key({**QUEUED, "logs": None, "metrics": {}}, logs_requested=False, submitted=True) is None
    assert rules.logs_key(RUNNING, logs_requested=False) is None
    assert rules.logs_key({**RUNNING, "logs": [line]}, logs_requested=True) is None
    assert rules.logs_key({"status": "COMPLETED"}, logs_requested=False) is not None  # fal_client needs the key
    assert rules.logs_key({**RUNNING, "logs": [line]}, logs_requested=False) is not None
    assert rules.logs_key(RUNNING, logs_requested=True) is not None
    assert rules.logs_key({**RUNNING, "logs": ["text"]}, logs_requested=True) is not None
    assert rules.logs_key({**QUEUED, "logs": [line]}, logs_requested=True) is not None
    assert rules.logs_key({**RUNNING, "logs": [line]}, logs_requested=None) is None  # logs sent twice: ambiguous


def test_the_logs_flag_reads_like_a_server() -> None:
    assert [rules.logs_flag(value) for value in ("1", 1, True, "true", "TRUE")] == [True] * 5
    assert [rules.logs_flag(value) for value in ("0", False, "", None)] == [False] * 4
    assert rules.logs_flag(["1", "0"]) is None
    assert rules.logs_flag(("junk", "true")) is None
    assert rules.logs_flag({"a": "1"}) is None
    assert rules.logs_flag(["1"]) is True


def test_the_submit_answer_points_at_the_app_id() -> None:
    base = "https://queue.fal.run/fal-ai/veo3.1/requests/r"
    body = {"status": "IN_QUEUE", "request_id": "r", "status_url": f"{base}/status", "response_url": base,
            "cancel_url": f"{base}/cancel", "queue_position": 0}  # fmt: skip
    assert rules.submit_answer(200, body, "fal-ai/veo3.1") is None
    assert rules.submit_answer(200, body, "fal-ai/veo3") is not None
    assert rules.submit_answer(202, body, "fal-ai/veo3.1") == "submit must answer 200, got 202"


def test_sse_events_are_their_data_lines_without_comments() -> None:
    stream = b'data: {"status": "IN_QUEUE"}\n\n: keepalive\n\ndata: {"status":\r\ndata: "COMPLETED"}\r\n\r\n'
    assert parse_events(stream) == ['{"status": "IN_QUEUE"}', '{"status":\n"COMPLETED"}']
    assert parse_events(b"data: last without a blank line") == ["last without a blank line"]
    assert parse_events(b": only a comment\n\n") == []
