"""Every error fal documents, as data: its HTTP status, body, `error_type` and headers.

Two families (https://fal.ai/docs/documentation/model-apis/errors.md and
https://fal.ai/docs/documentation/model-apis/request-errors.md):

- model errors: `{"detail": [{loc, msg, type, url, ctx?, input?}]}` + `X-Fal-Retryable`;
- request errors: `{"detail": msg, "error_type": type}` + `X-Fal-Error-Type`.

`FAILURES[name].error()` builds the `FalError` for one of them; names are fal's `type` /
`error_type` strings, so a scenario, a scripted outcome and a test all say `"content_policy_violation"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fal_emulator.errors import FalError, ModelError, RequestError, error_item

Family = Literal["model", "request"]


@dataclass(frozen=True)
class Failure:
    """One documented error. `loc` and `ctx` only apply to model errors; `retryable` sets X-Fal-Retryable."""

    name: str
    family: Family
    status_code: int
    message: str
    loc: tuple[str, ...] = ("body",)
    ctx: Mapping[str, Any] = field(default_factory=dict)
    retryable: bool = False

    def error(self, *, message: str | None = None) -> FalError:
        text = message or self.message
        if self.family == "model":
            item = error_item(list(self.loc), text, self.name, ctx=self.ctx or None)
            return ModelError([item], status_code=self.status_code, retryable=self.retryable)
        return RequestError(self.name, text, self.status_code)


def _model(name: str, status: int, message: str, **extra: Any) -> Failure:
    return Failure(name, "model", status, message, **extra)


def _request(name: str, status: int, message: str) -> Failure:
    return Failure(name, "request", status, message)


IMAGE = ("body", "image_url")
PROMPT = ("body", "prompt")

_ALL = [
    # Model errors (errors.md, "Model Errors"). Retryable ones say so in X-Fal-Retryable.
    _model("internal_server_error", 500, "Internal server error", retryable=True),
    _model("generation_timeout", 504, "Generation timed out", retryable=True),
    _model("downstream_service_error", 400, "The downstream service returned an error"),
    _model("downstream_service_unavailable", 500, "The downstream service is unavailable", retryable=True),
    _model(
        "content_policy_violation",
        422,
        "The content could not be processed because it contained material flagged by a content checker.",
        loc=PROMPT,
    ),
    _model("no_media_generated", 422, "The model did not generate the expected output for this prompt.", loc=PROMPT),
    _model("image_too_small", 422, "Image too small", loc=IMAGE, ctx={"min_height": 720, "min_width": 720}),
    _model("image_too_large", 422, "Image too large", loc=IMAGE, ctx={"max_height": 4096, "max_width": 4096}),
    _model("image_load_error", 422, "Failed to load the image", loc=IMAGE),
    _model("file_download_error", 422, "Failed to download the file", loc=IMAGE),
    _model("face_detection_error", 422, "Could not detect a face in the image", loc=IMAGE),
    _model("file_too_large", 422, "File too large", loc=IMAGE, ctx={"max_size": 8 * 1024 * 1024}),
    _model("greater_than", 422, "Input should be greater than 0", loc=("body", "seed"), ctx={"gt": 0}),
    _model(
        "greater_than_equal", 422, "Input should be greater than or equal to 0", loc=("body", "seed"), ctx={"ge": 0}
    ),
    _model("less_than", 422, "Input should be less than 4294967296", loc=("body", "seed"), ctx={"lt": 2**32}),
    _model(
        "less_than_equal",
        422,
        "Input should be less than or equal to 4294967295",
        loc=("body", "seed"),
        ctx={"le": 2**32 - 1},
    ),  # fmt: skip
    _model("multiple_of", 422, "Input should be a multiple of 2", loc=("body", "seed"), ctx={"multiple_of": 2}),
    _model(
        "sequence_too_short", 422, "List should have at least 1 item", loc=("body", "image_urls"), ctx={"min_length": 1}
    ),  # fmt: skip
    _model(
        "sequence_too_long", 422, "List should have at most 3 items", loc=("body", "image_urls"), ctx={"max_length": 3}
    ),  # fmt: skip
    _model(
        "one_of",
        422,
        "Input should be '16:9' or '9:16'",
        loc=("body", "aspect_ratio"),
        ctx={"expected": ["16:9", "9:16"]},
    ),  # fmt: skip
    _model("feature_not_supported", 422, "This feature is not supported"),
    _model(
        "invalid_archive", 422, "Invalid archive", loc=("body", "archive_url"), ctx={"supported_extensions": [".zip"]}
    ),  # fmt: skip
    _model(
        "archive_file_count_below_minimum",
        422,
        "Too few files in the archive",
        loc=("body", "archive_url"),
        ctx={"min_count": 1, "provided_count": 0, "supported_extensions": [".png", ".jpg"]},
    ),  # fmt: skip
    _model(
        "archive_file_count_exceeds_maximum",
        422,
        "Too many files in the archive",
        loc=("body", "archive_url"),
        ctx={"max_count": 10, "provided_count": 11, "supported_extensions": [".png", ".jpg"]},
    ),  # fmt: skip
    _model(
        "audio_duration_too_long",
        422,
        "Audio is too long",
        loc=("body", "audio_url"),
        ctx={"max_duration": 30, "provided_duration": 45},
    ),  # fmt: skip
    _model(
        "audio_duration_too_short",
        422,
        "Audio is too short",
        loc=("body", "audio_url"),
        ctx={"min_duration": 1, "provided_duration": 0.5},
    ),  # fmt: skip
    _model(
        "unsupported_audio_format",
        422,
        "Unsupported audio format",
        loc=("body", "audio_url"),
        ctx={"supported_formats": ["mp3", "wav"]},
    ),  # fmt: skip
    _model(
        "unsupported_image_format",
        422,
        "Unsupported image format",
        loc=IMAGE,
        ctx={"supported_formats": ["jpeg", "png", "webp", "gif"]},
    ),  # fmt: skip
    _model(
        "unsupported_video_format",
        422,
        "Unsupported video format",
        loc=("body", "video_url"),
        ctx={"supported_formats": ["mp4", "mov", "webm"]},
    ),  # fmt: skip
    _model(
        "video_duration_too_long",
        422,
        "Video is too long",
        loc=("body", "video_url"),
        ctx={"max_duration": 8, "provided_duration": 12},
    ),  # fmt: skip
    _model(
        "video_duration_too_short",
        422,
        "Video is too short",
        loc=("body", "video_url"),
        ctx={"min_duration": 1, "provided_duration": 0.5},
    ),  # fmt: skip
    # Request errors (request-errors.md): the runner or the platform, not the model.
    _request("request_timeout", 504, "Request timed out"),
    _request("startup_timeout", 504, "Runner startup timed out"),
    _request("runner_scheduling_failure", 503, "Failed to schedule a runner"),
    _request("runner_connection_timeout", 503, "Runner connection timed out"),
    _request("runner_disconnected", 503, "Runner disconnected"),
    _request("runner_connection_refused", 503, "Runner connection refused"),
    _request("runner_connection_error", 503, "Runner connection error"),
    _request("runner_incomplete_response", 502, "Runner returned an incomplete response"),
    _request("runner_server_error", 500, "Runner server error"),
    _request("client_disconnected", 499, "Client disconnected"),
    _request("client_cancelled", 499, "Request cancelled by the client."),
    _request("bad_request", 400, "Bad request"),
    _request("internal_error", 500, "Internal error"),
]

FAILURES: Mapping[str, Failure] = {failure.name: failure for failure in _ALL}
