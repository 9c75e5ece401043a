"""fal's queue rules as pure functions: an answer in, `None` (kept) or a message (broken) out.

Every suite applies the same functions: the Schemathesis checks (`fal_emulator.contracts.checks`), the lifecycle machine
(`fal_emulator.contracts.lifecycle`) and the probes. `RULES` names every rule the kit reports, with one line each.

Sources: https://fal.ai/docs/documentation/model-apis/inference/queue.md (states, 202/200, queue_position,
logs, cancel answers), https://fal.ai/docs/documentation/model-apis/errors.md (error shape), github
fal-ai/fal `projects/fal/src/fal/api/api.py` (a runner answers a body its model refuses with FastAPI's 422 and
`x-fal-billable-units: 0`; the queue took the body: TanStack/ai PR #396),
https://fal.ai/docs/documentation/model-apis/common-parameters.md (x-fal-request-id), fal_client 1.0.3
`_parse_status` (the keys a client needs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REQUEST_ID_HEADER = "x-fal-request-id"
STATES = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
RANK = {status: rank for rank, status in enumerate(STATES)}
CANCEL_ANSWERS = {202: "CANCELLATION_REQUESTED", 400: "ALREADY_COMPLETED", 404: "NOT_FOUND"}

RULES: dict[str, str] = {
    # answers (every suite)
    "x_fal_request_id": "every answer of the queue and run APIs carries a non-empty x-fal-request-id header",
    "fal_error_shape": "a 4xx answer is JSON in fal's shape: {detail: string | [{loc, msg, type}]} or a queue "
    "{status} answer; a 422 carries the detail list",
    "status_code_by_state": "status answers 202 while IN_QUEUE or IN_PROGRESS and 200 when COMPLETED; result "
    "answers 400 before COMPLETED and the output (200) or the stored error after",
    "queue_position_only_in_queue": "queue_position is an integer >= 0 while IN_QUEUE and absent otherwise",
    "logs_key": "IN_PROGRESS and COMPLETED carry a logs key, null unless logs were asked for and then a list of "
    "{message, timestamp}; IN_QUEUE carries none (or null)",
    "file_size_matches": "a File's file_size equals the bytes served at its url",
    "submit_answer": "submit answers 200 with status, request_id and the status_url, response_url and cancel_url "
    "of the app id",
    # lifecycle (the machine)
    "status_never_backwards": "a request's status never goes back (IN_QUEUE < IN_PROGRESS < COMPLETED)",
    "queue_position_decreases": "a queued request's queue_position never grows",
    "completed_has_result": "once COMPLETED, the result is the output (200) or the stored error, never 400",
    "cancelled_while_queued_never_runs": "a request cancelled while IN_QUEUE completes without ever running",
    "cancel_answer": "cancel answers 202 CANCELLATION_REQUESTED before COMPLETED, 400 ALREADY_COMPLETED after, "
    "404 NOT_FOUND for an unknown id",
    "sse_matches_polling": "the status stream's events are the statuses polling sees, in order, and the last "
    "equals the status polled after it; (inferred) each event's logs are only the lines new since the event "
    "before, so together they are the list a poll shows: a warning, not a violation, against a target that is "
    "not an emulator",
    "sse_ends_at_completed": "the status stream sends a COMPLETED event and then closes",
    # media
    "media_download": "the result's video.url downloads whole (200) with Content-Length equal to file_size",
    "media_range": "the video honours Range: 206 with that slice and Content-Range, 416 past the end",
    "media_h264": "the video is an MP4 whose video stream is H.264",
    "media_dimensions": "the video's width x height follow the request's resolution and aspect_ratio",
    "media_duration": "the video lasts the request's duration",
    "media_audio": "the video has an audio track exactly when generate_audio is true",
    # the synchronous host
    "run_rejects_invalid_input": "the run host answers an input without its required fields with 422 in fal's shape",
    "run_answers_output": "the run host answers a valid input with 200 and the endpoint's output",
    # validation (where fal's runner does it)
    "bad_input_refused_at_result": "an input the endpoint's pydantic model (lax mode) refuses gets a request id at "
    "submit and completes with FastAPI's 422 (a detail list, x-fal-billable-units: 0) at the result (an emulator "
    "may answer it at submit when asked to); an input the model accepts is never refused with 422 at submit",
}

# Rules, or parts of rules, that rest on an inference rather than on fal's documentation or its clients' code:
# against a target that is not an emulator a break of one is reported as a warning, never as a violation, so a
# real fal that differs is not called broken on a guess. Against an emulator they are enforced.
INFERRED: dict[str, str] = {
    "sse_matches_polling": "fal documents that each event has the fields of a poll; that an event's logs are "
    "only the lines new since the event before is inferred from @fal-ai/client 1.10.1, which appends each "
    "event's logs to those it holds (DIVERGENCES.md #22)",
}


def request_id_header(headers: Mapping[str, Any]) -> str | None:
    """Headers with lowercase names; values are strings or lists of strings."""
    value = headers.get(REQUEST_ID_HEADER)
    if isinstance(value, list):
        value = value[0] if value else None
    if not value or not str(value).strip():
        return f"the answer has no {REQUEST_ID_HEADER} header"
    return None


def error_shape(status_code: int, body: Any) -> str | None:
    """`body` is the parsed JSON of a 4xx answer (anything else for a body that is not JSON)."""
    if not isinstance(body, dict):
        return f"a {status_code} answer must be a JSON object in fal's error shape, got {_show(body)}"
    detail = body.get("detail")
    if isinstance(detail, list):
        for item in detail:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("loc"), list)
                and isinstance(item.get("msg"), str)
                and isinstance(item.get("type"), str)
            ):
                return f"each detail item must be {{loc: list, msg: string, type: string}}, got {_show(item)}"
        return None
    if status_code == 422:
        return f"a 422 answer must carry a detail list of {{loc, msg, type}}, got {_show(body)}"
    if isinstance(detail, str) and detail:
        return None
    if body.get("status") in {"NOT_FOUND", "ALREADY_COMPLETED", "CANCELLATION_REQUESTED"}:
        return None
    return f"a {status_code} answer needs a detail (string or list) or a queue status, got {_show(body)}"


def status_code_by_state(status_code: int, body: Any) -> str | None:
    """A 2xx answer of the status operation: 200 exactly when the body says COMPLETED."""
    status = body.get("status") if isinstance(body, dict) else None
    if status not in RANK:
        return f"a status answer must carry status IN_QUEUE, IN_PROGRESS or COMPLETED, got {_show(body)}"
    expected = 200 if status == "COMPLETED" else 202
    if status_code != expected:
        return f"status {status} must be answered with HTTP {expected}, got {status_code}"
    return None


def result_code(status_code: int, body: Any) -> str | None:
    """A result answer: 200 is the output (never a queue status); 400 says the request is still running."""
    if status_code == 200 and isinstance(body, dict) and body.get("status") in {"IN_QUEUE", "IN_PROGRESS"}:
        return f"the result answered 200 with a {body['status']} status instead of the output"
    if status_code == 400 and not (isinstance(body, dict) and isinstance(body.get("detail"), str)):
        return f"a 400 result (not completed yet) must carry a detail string, got {_show(body)}"
    return None


def cancel_code(status_code: int, body: Any) -> str | None:
    """A cancel answer: 202 CANCELLATION_REQUESTED, 400 ALREADY_COMPLETED or 404 NOT_FOUND, code and body agreeing."""
    status = body.get("status") if isinstance(body, dict) else None
    if status_code not in CANCEL_ANSWERS:
        return f"cancel must answer 202, 400 or 404, got {status_code} with {_show(body)}"
    if status != CANCEL_ANSWERS[status_code]:
        return f"a {status_code} cancel answer must say status {CANCEL_ANSWERS[status_code]}, got {_show(body)}"
    return None


def queue_position(body: Any) -> str | None:
    """A status object (submit, status, stream event)."""
    if not isinstance(body, dict):
        return None
    status, present = body.get("status"), "queue_position" in body
    position = body.get("queue_position")
    if status == "IN_QUEUE":
        if not present:
            return "an IN_QUEUE status must carry queue_position"
        if not isinstance(position, int) or isinstance(position, bool) or position < 0:
            return f"queue_position must be an integer >= 0, got {position!r}"
    elif present and position is not None:
        return f"queue_position must be absent once {status}, got {position!r}"
    return None


def logs_key(body: Any, *, logs_requested: bool | None, submitted: bool = False) -> str | None:
    """A status object; `logs_requested` is the `logs` query flag (None when ambiguous: only the key's
    presence is checked then), `submitted` marks the submit answer."""
    if not isinstance(body, dict):
        return None
    status = body.get("status")
    if submitted or status == "IN_QUEUE":
        if body.get("logs") is not None:
            return f"logs must be absent or null while IN_QUEUE, got {_show(body.get('logs'))}"
        return None
    if status not in {"IN_PROGRESS", "COMPLETED"}:
        return None
    if "logs" not in body:
        return f"an {status} status must carry a logs key (fal_client reads it)"
    logs = body["logs"]
    if logs_requested is None:
        return None
    if not logs_requested:
        return None if logs is None else f"logs must be null when not asked for, got {_show(logs)}"
    if not isinstance(logs, list):
        return f"logs must be a list when asked for (logs=1), got {_show(logs)}"
    for entry in logs:
        if not (isinstance(entry, dict) and isinstance(entry.get("message"), str)):
            return f"each log line must be an object with a message, got {_show(entry)}"
    return None


def stream_as_polled(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The status a poll should show right after a status stream closed: its last event, with `logs` (when it
    is a list) replaced by every event's lines joined in order. fal's stream sends each line once (the event's
    `logs` are the lines new since the event before): @fal-ai/client 1.10.1 appends each event's `logs` to the
    lines it holds ("accumulate logs to match previous polling behavior", `queue.js`)."""
    last = dict(events[-1])
    if isinstance(last.get("logs"), list):
        last["logs"] = [line for event in events if isinstance(event.get("logs"), list) for line in event["logs"]]
    return last


def submit_answer(status_code: int, body: Any, app_id: str) -> str | None:
    """The submit answer of an endpoint whose app id is `app_id` (`fal-ai/veo3.1`)."""
    if status_code != 200:
        return f"submit must answer 200, got {status_code}"
    if not isinstance(body, dict) or not isinstance(body.get("request_id"), str) or body.get("status") not in RANK:
        return f"submit must answer a status object with request_id, got {_show(body)}"
    request_id = body["request_id"]
    expected = {
        "status_url": f"/{app_id}/requests/{request_id}/status",
        "response_url": f"/{app_id}/requests/{request_id}",
        "cancel_url": f"/{app_id}/requests/{request_id}/cancel",
    }
    for key, suffix in expected.items():
        value = body.get(key)
        if not isinstance(value, str) or not value.endswith(suffix):
            return f"submit's {key} must end with {suffix}, got {value!r}"
    return None


def submit_of_input(status_code: int, *, refused: bool) -> str | None:
    """The submit answer's status for an input the endpoint's model `refused` (or accepts)."""
    if status_code == 422 and not refused:
        return "an input fal's runner accepts (its pydantic model, lax mode) was refused with 422 at submit"
    return None


def result_of_refused_input(status_code: int, body: Any, billable_units: str | None) -> str | None:
    """The result of an accepted submit whose input the endpoint's model refuses."""
    if status_code != 422:
        return f"an input the runner refuses must complete with a 422 result, got {status_code} {_show(body)}"
    problem = error_shape(status_code, body)
    if problem:
        return problem
    if billable_units != "0":
        return f"a validation 422 must carry x-fal-billable-units: 0, got {billable_units!r}"
    return None


def logs_flag(value: Any) -> bool | None:
    """The `logs` query value as a server reads it: 1 and true ask for logs; None when it was sent more than
    once (servers disagree on which one counts)."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return logs_flag(value[0])
    if not isinstance(value, (str, int, float, bool, type(None))):
        return None  # sent as several values (an array, an object): servers disagree on which one counts
    return str(value).lower() in {"1", "true"}


def _show(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
