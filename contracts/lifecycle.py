"""The lifecycle machine: one flat Hypothesis `RuleBasedStateMachine` that drives a target beside a small
in-memory model of what it has seen, and fails on the first answer that breaks fal's queue rules.

Rules: submit, poll (with or without logs), stream the status (SSE), cancel, fetch the result, advance the
clock (when the kit controls the target's time), and ask about unknown request ids. Each answer is checked
by `fal_emulator.contracts.rules` and against the model:

- `status_never_backwards`: IN_QUEUE < IN_PROGRESS < COMPLETED, across polls, streams and results;
- `queue_position_decreases`: never negative (`queue_position_only_in_queue`), never growing;
- `completed_has_result`: once COMPLETED, the result is the output or the stored error (an invariant);
- `cancelled_while_queued_never_runs`: no IN_PROGRESS, no run time, no output after such a cancel;
- `cancel_answer`: 202 before COMPLETED, 400 after, 404 for an unknown id;
- `sse_matches_polling` and `sse_ends_at_completed`: the stream's events are what polling sees (each event's
  logs being the lines new since the event before, as fal sends them), and the stream closes right after its
  COMPLETED event.

In-process, the emulator's clock is frozen: a status observed since the last `advance_clock` is the
request's current status, so the machine knows exactly when a cancel hits a queued request. Elsewhere
time flows and the model only asserts what cannot race. `fal_emulator.contracts.lifecycle_suite` runs the machine
and reports a failure with the rule it broke, the failing request, and the minimal program Hypothesis found
(`state.submit(...)`, …).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
from jsonschema import Draft7Validator

from fal_emulator.contracts import rules
from fal_emulator.contracts.documents import cheapest_input, input_strategy
from fal_emulator.contracts.model import Broken, MachineContext, Tracked, answer_of, show
from fal_emulator.contracts.profiles import register_hypothesis_profiles
from fal_emulator.contracts.streaming import read_status_stream

register_hypothesis_profiles()

SUITE = "lifecycle"
MAX_REQUESTS = 6  # submitted requests per run of the machine


class LifecycleMachine(RuleBasedStateMachine):
    """The target beside a model of the requests it was sent (see the module docstring)."""

    requests = Bundle("requests")

    def __init__(self, context: MachineContext) -> None:
        super().__init__()
        self.ctx = context
        self.model: dict[str, Tracked] = {}

    # -- helpers ------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, Any, str]:
        response = self.ctx.client.request(method, self.ctx.url(path), **kwargs)
        self.ctx.requests_made += 1
        line, body = answer_of(response)
        self._require(rules.request_id_header(response.headers), "x_fal_request_id", line, response, body)
        if 400 <= response.status_code < 500:
            self._require(rules.error_shape(response.status_code, body), "fal_error_shape", line, response, body)
        return response, body, line

    @staticmethod
    def _require(message: str | None, rule_name: str, line: str, response: httpx.Response, body: Any) -> None:
        if message:
            raise Broken(rule_name, message, line, show(response, body))

    def _inferred(self, broken: Broken) -> None:
        """A break of an inferred rule (`rules.INFERRED`): a violation against an emulator, a warning elsewhere."""
        if self.ctx.target.is_emulator:
            raise broken
        warning = (
            f"[{broken.rule}] (an inferred rule: {rules.INFERRED[broken.rule]}) {broken.message} ({broken.request})"
        )
        if warning not in self.ctx.warnings:
            self.ctx.warnings.append(warning)

    def _track(self, request_id: str) -> Tracked:
        tracked = self.model[request_id]
        self.ctx.current_endpoint = tracked.endpoint.endpoint_id
        return tracked

    def _fresh(self, tracked: Tracked) -> bool:
        """Whether the last observed status is the current one (frozen clock, not advanced since)."""
        return self.ctx.frozen and tracked.epoch == self.ctx.epoch

    def _observe(
        self, tracked: Tracked, body: Any, line: str, response: httpx.Response, *, epoch: int | None = None
    ) -> None:
        """Check one status object of `tracked` against the model, then record it as seen at clock `epoch`
        (by default the current one)."""
        status = body["status"]
        shown = show(response, body)
        if rules.RANK[status] < rules.RANK[tracked.status]:
            message = f"request {tracked.request_id} went back from {tracked.status} to {status}"
            raise Broken("status_never_backwards", message, line, shown)
        position = body.get("queue_position")
        queued = status == "IN_QUEUE" and tracked.status == "IN_QUEUE" and tracked.position is not None
        if queued and isinstance(position, int) and tracked.position is not None and position > tracked.position:
            message = f"queue_position grew from {tracked.position} to {position}"
            raise Broken("queue_position_decreases", message, line, shown)
        if tracked.cancelled_while_queued:
            if status == "IN_PROGRESS":
                raise Broken("cancelled_while_queued_never_runs", "the request ran after it was cancelled", line, shown)
            if status == "COMPLETED" and (body.get("metrics") or {}).get("inference_time"):
                message = f"the request reports {body['metrics']['inference_time']} s of run time"
                raise Broken("cancelled_while_queued_never_runs", message, line, shown)
        tracked.status, tracked.epoch = status, self.ctx.epoch if epoch is None else epoch
        tracked.position = position if status == "IN_QUEUE" else None

    def _status_object_rules(self, body: Any, logs: bool | None, line: str, response: httpx.Response) -> None:
        self._require(rules.queue_position(body), "queue_position_only_in_queue", line, response, body)
        self._require(rules.logs_key(body, logs_requested=logs), "logs_key", line, response, body)

    # -- rules --------------------------------------------------------------------------------------

    @initialize(target=requests, data=st.data())
    def first_submit(self, data: st.DataObject) -> str | MultipleResults[str]:
        """Every run starts with a request (when the budget allows one)."""
        return self.submit(data) if self._can_submit() else multiple()

    @precondition(lambda self: len(self.model) < MAX_REQUESTS and self._can_submit())
    @rule(target=requests, data=st.data())
    def submit(self, data: st.DataObject) -> str:
        budget = self.ctx.budget
        choices = [e for e in self.ctx.endpoints if budget is None or budget.can_afford(e, cheapest_input(e))]
        endpoint_id = data.draw(st.sampled_from([e.endpoint_id for e in choices]), label="endpoint")
        endpoint = next(e for e in choices if e.endpoint_id == endpoint_id)
        self.ctx.current_endpoint = endpoint_id
        if self.ctx.budget is None:
            arguments = data.draw(input_strategy(endpoint), label="arguments")
        else:
            arguments = cheapest_input(endpoint)
            self.ctx.budget.charge(endpoint, arguments)
        response, body, line = self._call("POST", endpoint.endpoint_id, json=arguments)
        self._require(
            rules.submit_answer(response.status_code, body, endpoint.app_id), "submit_answer", line, response, body
        )
        self._require(rules.queue_position(body), "queue_position_only_in_queue", line, response, body)
        self._require(rules.logs_key(body, logs_requested=False, submitted=True), "logs_key", line, response, body)
        tracked = Tracked(body["request_id"], endpoint, arguments)
        self._observe(tracked, body, line, response)
        self.model[tracked.request_id] = tracked
        return tracked.request_id

    def _can_submit(self) -> bool:
        budget = self.ctx.budget
        if budget is None:
            return True
        return any(budget.can_afford(e, cheapest_input(e)) for e in self.ctx.endpoints)

    @rule(request_id=requests, logs=st.booleans())
    def poll(self, request_id: str, logs: bool) -> None:
        tracked = self._track(request_id)
        response, body, line = self._call("GET", f"{tracked.app_path}/status", params={"logs": int(logs)})
        if response.status_code not in (200, 202):
            raise Broken(
                "status_code_by_state",
                f"status of a known request answered {response.status_code}",
                line,
                show(response, body),
            )
        self._require(
            rules.status_code_by_state(response.status_code, body), "status_code_by_state", line, response, body
        )
        self._status_object_rules(body, logs, line, response)
        if tracked.cancelled_while_queued and logs and body["status"] == "COMPLETED" and body.get("logs"):
            raise Broken("cancelled_while_queued_never_runs", "the request has runner logs", line, show(response, body))
        self._observe(tracked, body, line, response)

    @rule(request_id=requests)
    def cancel(self, request_id: str) -> None:
        tracked = self._track(request_id)
        fresh, before = self._fresh(tracked), tracked.status
        response, body, line = self._call("PUT", f"{tracked.app_path}/cancel")
        self._require(rules.cancel_code(response.status_code, body), "cancel_answer", line, response, body)
        if response.status_code == 404:
            raise Broken("cancel_answer", "cancel of a submitted request answered 404", line, show(response, body))
        answer = body["status"]
        if before == "COMPLETED" and answer != "ALREADY_COMPLETED":
            raise Broken(
                "cancel_answer",
                "cancel of a COMPLETED request must answer 400 ALREADY_COMPLETED",
                line,
                show(response, body),
            )
        if fresh and before != "COMPLETED" and answer != "CANCELLATION_REQUESTED":
            message = f"cancel of an {before} request must answer 202 CANCELLATION_REQUESTED"
            raise Broken("cancel_answer", message, line, show(response, body))
        if answer == "CANCELLATION_REQUESTED":
            tracked.cancelled_while_queued |= fresh and before == "IN_QUEUE"
            tracked.epoch = -1  # what the cancel did is known only from the next observation
        if answer == "ALREADY_COMPLETED":
            self._observe(tracked, {"status": "COMPLETED"}, line, response)

    @rule(request_id=requests)
    def fetch_result(self, request_id: str) -> None:
        tracked = self._track(request_id)
        fresh, before = self._fresh(tracked), tracked.status
        response, body, line = self._call("GET", tracked.app_path)
        self._require(rules.result_code(response.status_code, body), "status_code_by_state", line, response, body)
        if response.status_code == 400:
            if before == "COMPLETED":
                raise Broken(
                    "completed_has_result",
                    "the result of a COMPLETED request answered 400",
                    line,
                    show(response, body),
                )
            return
        if fresh and before != "COMPLETED":
            raise Broken(
                "status_code_by_state",
                f"the result answered {response.status_code} while the request is "
                f"{before} (400 expected before COMPLETED)",
                line,
                show(response, body),
            )
        self._check_result(tracked, response, body, line)
        self._observe(tracked, {"status": "COMPLETED"}, line, response)

    @rule(request_id=requests, logs=st.booleans())
    def stream(self, request_id: str, logs: bool) -> None:
        tracked = self._track(request_id)
        fresh_status, start = (tracked.status if self._fresh(tracked) else None), self.ctx.epoch
        events, epochs, line, response = read_status_stream(
            self.ctx,
            tracked,
            logs,
            lambda event, event_line, answer: self._status_object_rules(event, logs, event_line, answer),
            lambda: self._call("GET", f"{tracked.app_path}/status"),
        )
        if fresh_status is not None and events and epochs[0] == start and events[0]["status"] != fresh_status:
            raise Broken(
                "sse_matches_polling",
                f"the stream began with {events[0]['status']} but polling had just seen {fresh_status}",
                line,
                json.dumps(events[0])[:400],
            )
        for event, epoch in zip(events, epochs, strict=True):
            self._observe(tracked, event, line, response, epoch=epoch)
        if events and events[-1]["status"] == "COMPLETED":
            polled, body, poll_line = self._call("GET", f"{tracked.app_path}/status", params={"logs": int(logs)})
            self._require(
                rules.status_code_by_state(polled.status_code, body), "status_code_by_state", poll_line, polled, body
            )
            self._observe(tracked, body, poll_line, polled)
            streamed = rules.stream_as_polled(events)
            if {**body, "logs": None} != {**streamed, "logs": None}:
                raise Broken(
                    "sse_matches_polling",
                    "the stream's COMPLETED event differs from the status polled right after it:\n"
                    f"  streamed: {json.dumps(streamed)[:400]}",
                    poll_line,
                    show(polled, body),
                )
            if body.get("logs") != streamed.get("logs"):
                self._inferred(
                    Broken(
                        "sse_matches_polling",
                        "the stream's log lines (every event's joined, each event carrying the lines new since the "
                        "one before) differ from the lines polled right after it:\n"
                        f"  streamed: {json.dumps(streamed.get('logs'))[:400]}",
                        poll_line,
                        show(polled, body),
                    )
                )

    @precondition(lambda self: self.ctx.target.clock is not None)
    @rule(seconds=st.floats(min_value=0.25, max_value=3.0))
    def advance_clock(self, seconds: float) -> None:
        assert self.ctx.target.clock is not None
        self.ctx.target.clock.advance(seconds)
        self.ctx.epoch += 1

    @rule(
        endpoint_index=st.integers(min_value=0, max_value=10**6),
        operation=st.sampled_from(["status", "stream", "result", "cancel"]),
    )
    def unknown_request(self, endpoint_index: int, operation: str) -> None:
        endpoint = self.ctx.endpoints[endpoint_index % len(self.ctx.endpoints)]
        self.ctx.current_endpoint = endpoint.endpoint_id
        path = f"{endpoint.app_id}/requests/{uuid.UUID(int=endpoint_index + 1)}"
        method, suffix = {
            "status": ("GET", "/status"),
            "stream": ("GET", "/status/stream"),
            "result": ("GET", ""),
            "cancel": ("PUT", "/cancel"),
        }[operation]
        response, body, line = self._call(method, path + suffix)
        if response.status_code != 404:
            raise Broken(
                "cancel_answer" if operation == "cancel" else "status_code_by_state",
                f"an unknown request id must answer 404, got {response.status_code}",
                line,
                show(response, body),
            )
        if operation == "cancel":
            self._require(rules.cancel_code(404, body), "cancel_answer", line, response, body)

    @invariant()
    def completed_requests_have_results(self) -> None:
        for tracked in self.model.values():
            if tracked.status != "COMPLETED" or tracked.result_checked:
                continue
            self.ctx.current_endpoint = tracked.endpoint.endpoint_id
            response, body, line = self._call("GET", tracked.app_path)
            if response.status_code == 400:
                raise Broken(
                    "completed_has_result",
                    "a COMPLETED request's result answered 400 (not ready)",
                    line,
                    show(response, body),
                )
            self._check_result(tracked, response, body, line)

    # -- checks shared by rules -------------------------------------------------------------------

    def _check_result(self, tracked: Tracked, response: httpx.Response, body: Any, line: str) -> None:
        tracked.result_checked = True
        if response.status_code == 200:
            if tracked.cancelled_while_queued:
                raise Broken(
                    "cancelled_while_queued_never_runs",
                    "a request cancelled while queued has an output",
                    line,
                    show(response, body),
                )
            errors = sorted(Draft7Validator(tracked.endpoint.output_schema).iter_errors(body), key=str)
            if errors:
                raise Broken(
                    "completed_has_result",
                    f"the output does not match the endpoint's output schema: {errors[0].message}",
                    line,
                    show(response, body),
                )
            self.ctx.outputs.append((tracked.endpoint, tracked.arguments, body))
        elif response.status_code >= 500:
            self._require(rules.error_shape(response.status_code, body), "fal_error_shape", line, response, body)
        elif response.status_code < 400:
            raise Broken(
                "completed_has_result", f"the result answered {response.status_code}", line, show(response, body)
            )
