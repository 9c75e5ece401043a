"""One error tree; each leaf knows the HTTP status, body and headers fal answers with.

    FalError                    any answer in fal's error shape
     ├── ModelError             {"detail": [{loc, msg, type, url, ctx?, input?}]}   (fal's model errors)
     ├── RequestValidationError 422 {"detail": [{type, loc, msg, input, ctx?}]} (FastAPI's input validation)
     ├── RequestError           {"detail": "...", "error_type": "..."} + X-Fal-Error-Type (infrastructure errors)
     ├── AuthenticationError    401 {"detail": "..."}
     ├── NotFound               404 {"detail": "..."} (unknown endpoint or path)
     ├── RequestNotFound        404 {"status": "NOT_FOUND", "detail": "..."} (unknown request id)
     └── ResultNotReady         400 {"detail": "Request is still in progress"}
    GatewayError                an nginx-style 502/503/504 page with no `x-fal-request-id` (not fal's app)
    ConnectionDrop              no answer at all: the connection closes mid-answer

Domain code raises; the HTTP layer renders `status_code`, `body` and `headers` in one place.
Sources: https://fal.ai/docs/documentation/model-apis/errors.md (model errors),
https://fal.ai/docs/documentation/model-apis/request-errors.md (request errors),
https://fal.ai/docs/documentation/model-apis/inference/queue.md (queue answers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

JSON = dict[str, Any]
ERROR_DOCS_URL = "https://docs.fal.ai/errors/#{type}"


class FalError(Exception):
    """An answer in fal's error shape: HTTP `status_code`, JSON `body`, extra `headers`."""

    status_code: int = 500

    def __init__(self, body: JSON, *, status_code: int | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(body.get("detail", body))
        self.body = body
        if status_code is not None:
            self.status_code = status_code
        self.headers = dict(headers or {})

    @property
    def error_type(self) -> str | None:
        """The machine-readable type a COMPLETED status reports for this error."""
        return self.headers.get("X-Fal-Error-Type")

    @property
    def message(self) -> str:
        """The human-readable `error` a COMPLETED status reports for this error."""
        detail = self.body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            return str(detail[0].get("msg", ""))
        return f"Invalid status code: {self.status_code}"


NO_INPUT: Any = object()  # marks an error item that echoes no input (distinct from an input of null)


def error_item(
    loc: Sequence[str | int], msg: str, type_: str, *, input_: Any = NO_INPUT, ctx: Mapping[str, Any] | None = None
) -> JSON:
    """One entry of a model error's `detail` list: `{loc, msg, type, url, ctx?, input?}`."""
    item: JSON = {"loc": list(loc), "msg": msg, "type": type_, "url": ERROR_DOCS_URL.format(type=type_)}
    if ctx:
        item["ctx"] = dict(ctx)
    if input_ is not NO_INPUT:
        item["input"] = input_
    return item


class ModelError(FalError):
    """A model (or input validation) error: `{"detail": [items]}`, 422 unless the type says otherwise."""

    status_code = 422

    def __init__(self, items: list[JSON], *, status_code: int | None = None, retryable: bool = False):
        headers = {"X-Fal-Retryable": "true" if retryable else "false"}
        if items:
            headers["X-Fal-Error-Type"] = str(items[0]["type"])
        super().__init__({"detail": items}, status_code=status_code, headers=headers)
        self.items = items


BILLABLE_UNITS_HEADER = "x-fal-billable-units"


class RequestValidationError(FalError):
    """FastAPI's answer to a body its pydantic model rejects: `422 {"detail": [pydantic's error items]}`.

    A fal app answers it with `x-fal-billable-units: 0` and no other header (github fal-ai/fal
    `projects/fal/src/fal/api/api.py`, `request_val_exception_handler`), so it names no `error_type`.
    """

    status_code = 422

    def __init__(self, items: list[JSON]) -> None:
        super().__init__({"detail": items}, headers={BILLABLE_UNITS_HEADER: "0"})
        self.items = items


class RequestError(FalError):
    """An infrastructure error: `{"detail": message, "error_type": type}` with `X-Fal-Error-Type`."""

    def __init__(self, error_type: str, detail: str, status_code: int, headers: Mapping[str, str] | None = None):
        super().__init__(
            {"detail": detail, "error_type": error_type},
            status_code=status_code,
            headers={"X-Fal-Error-Type": error_type, **(headers or {})},
        )


class AuthenticationError(FalError):
    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__({"detail": detail})


class NotFound(FalError):
    status_code = 404

    def __init__(self, detail: str) -> None:
        super().__init__({"detail": detail})


class RequestNotFound(FalError, LookupError):
    status_code = 404

    def __init__(self, request_id: str) -> None:
        super().__init__({"status": "NOT_FOUND", "detail": f"Request {request_id} not found"})
        self.request_id = request_id


class ResultNotReady(FalError):
    status_code = 400

    def __init__(self, request_id: str) -> None:
        super().__init__({"detail": "Request is still in progress"})
        self.request_id = request_id


def client_cancelled() -> RequestError:
    """What a request cancelled by the client completes with (499 `client_cancelled`)."""
    return RequestError("client_cancelled", "Request cancelled by the client.", 499)


def start_timeout() -> RequestError:
    """What a request whose `X-Fal-Request-Timeout` start deadline passed completes with.

    Source: https://fal.ai/docs/documentation/model-apis/common-parameters.md ("Platform Headers"):
    504 + `X-Fal-Request-Timeout-Type: user`; fal_client 1.0.3 never retries it.
    """
    return RequestError("request_timeout", "Request timed out", 504, headers={"X-Fal-Request-Timeout-Type": "user"})


class GatewayError(Exception):
    """An error from the gateway in front of fal (HTML, no `x-fal-request-id`): clients retry these.

    fal_client 1.0.3 `_is_ingress_error`: a 502/503/504 without `x-fal-request-id` whose body mentions nginx.
    """

    def __init__(self, status_code: int, html: str) -> None:
        super().__init__(f"gateway error {status_code}")
        self.status_code = status_code
        self.html = html


class ConnectionDrop(Exception):
    """The connection is to be closed before a complete answer (the `drop` scenario)."""
