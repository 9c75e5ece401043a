"""Deliberately broken emulators: ASGI wrappers around `create_app()` that each break one of fal's rules.

`VARIANTS` maps a variant's name to the wrapper and the rules the kit must name when it checks it. Every
wrapper changes answers on the way out (or holds a stream open); the emulator itself is untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fal_emulator.media import MediaLibrary
from fal_emulator.paths import FIXTURES_DIR

# (scope, status code, parsed JSON body) -> (status code, body); return `NO_BODY` for an empty body.
JsonRewrite = Callable[[Scope, int, Any], tuple[int, Any]]
NO_BODY = object()
Wrapper = Callable[[ASGIApp], ASGIApp]


def _path(scope: Scope) -> str:
    return str(scope.get("path", ""))


def is_status(scope: Scope) -> bool:
    return _path(scope).endswith("/status")


def is_result(scope: Scope) -> bool:
    return "/requests/" in _path(scope) and not _path(scope).endswith(("/status", "/cancel", "/stream"))


def is_cancel(scope: Scope) -> bool:
    return _path(scope).endswith("/cancel")


def _header(message: Message, name: bytes) -> str:
    for key, value in message.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _with_headers(message: Message, headers: list[tuple[bytes, bytes]]) -> Message:
    return {**message, "headers": headers}


def rewrite_json(rewrite: JsonRewrite) -> Wrapper:
    """Pass every `application/json` answer through `rewrite` (Content-Length follows the new body)."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start: Message | None = None
            chunks: list[bytes] = []

            async def capture(message: Message) -> None:
                nonlocal start
                if message["type"] == "http.response.start":
                    start = message
                    return
                if start is None or not _header(start, b"content-type").startswith("application/json"):
                    if start is not None:
                        await send(start)
                        start = None
                    await send(message)
                    return
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                status, body = rewrite(scope, start["status"], json.loads(b"".join(chunks) or b"null"))
                data = b"" if body is NO_BODY else json.dumps(body).encode()
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(data)).encode()))
                await send({**_with_headers(start, headers), "status": status})
                await send({"type": "http.response.body", "body": data})

            await app(scope, receive, capture)

        return wrapped

    return wrap


def rewrite_messages(rewrite: Callable[[Scope, Message], Message]) -> Wrapper:
    """Pass every ASGI message of an answer through `rewrite`."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            async def forward(message: Message) -> None:
                await send(rewrite(scope, message) if scope["type"] == "http" else message)

            await app(scope, receive, forward)

        return wrapped

    return wrap


# -- the variants -----------------------------------------------------------------------------------------


def _drop_queue_position(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    if isinstance(body, dict):
        body.pop("queue_position", None)
    return status, body


def _running_is_200(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    return (200 if is_status(scope) and status == 202 else status), body


def _result_before_completion(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    if is_result(scope) and status == 400:
        clip = MediaLibrary(FIXTURES_DIR).by_name("1280x720_4s_silent.mp4")
        assert clip is not None
        video = {"url": "http://127.0.0.1:1/files/early.mp4", "content_type": "video/mp4", "file_size": clip.file_size}
        return 200, {"video": video}
    return status, body


def _refused_input_gets_a_video(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    """A runner that skips validation: the result of a refused input is a video, not the 422."""
    if is_result(scope) and status == 422:
        clip = MediaLibrary(FIXTURES_DIR).by_name("1280x720_8s_audio.mp4")
        assert clip is not None
        video = {"url": "http://127.0.0.1:1/files/unvalidated.mp4", "content_type": "video/mp4"}
        return 200, {"video": {**video, "file_size": clip.file_size}}
    return status, body


def _wrong_error_shape(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    if 400 <= status < 500 and isinstance(body, dict) and "detail" in body:
        return status, {"error": {"message": str(body["detail"])[:200]}}
    return status, body


def per_app(make_rewrite: Callable[[], JsonRewrite]) -> Wrapper:
    """`rewrite_json` with a rewrite that keeps state: each wrapped app gets its own."""

    def wrap(app: ASGIApp) -> ASGIApp:
        return rewrite_json(make_rewrite())(app)

    return wrap


def _completed_goes_back() -> JsonRewrite:
    seen: set[str] = set()

    def rewrite(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
        if is_status(scope) and isinstance(body, dict) and body.get("status") == "COMPLETED":
            request_id = str(body.get("request_id"))
            if request_id in seen:
                body = {key: value for key, value in body.items() if key not in {"metrics", "error", "error_type"}}
                return 202, {**body, "status": "IN_PROGRESS"}
            seen.add(request_id)
        return status, body

    return rewrite


def _cancel_200_no_body(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    return (200, NO_BODY) if is_cancel(scope) and status == 202 else (status, body)


def _map_video(body: Any, change: Callable[[dict[str, Any]], None]) -> Any:
    if isinstance(body, dict) and isinstance(body.get("video"), dict):
        change(body["video"])
    return body


def _wrong_file_size(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    def change(video: dict[str, Any]) -> None:
        video["file_size"] = int(video.get("file_size") or 0) + 1

    return status, _map_video(body, change)


def _swap_clip(pattern: str, replace: Callable[[re.Match[str]], str]) -> JsonRewrite:
    """Point every output at another committed clip (the file name rewritten), with that clip's file_size."""
    library = MediaLibrary(FIXTURES_DIR)

    def change(video: dict[str, Any]) -> None:
        name = str(video.get("file_name", ""))
        other = re.sub(pattern, replace, name)
        clip = library.by_name(other)
        if clip is not None:
            video.update(url=str(video["url"]).replace(name, other), file_name=other, file_size=clip.file_size)

    def rewrite(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
        return status, _map_video(body, change)

    return rewrite


def _logs_when_not_asked(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    if is_status(scope) and isinstance(body, dict) and body.get("logs") is None and body.get("status") != "IN_QUEUE":
        body["logs"] = [{"message": "always", "level": "INFO", "source": "USER", "timestamp": "2026-01-01T00:00:00Z"}]
    return status, body


def _strip_request_id(scope: Scope, message: Message) -> Message:
    if message["type"] != "http.response.start":
        return message
    return _with_headers(message, [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-fal-request-id"])


def _ignore_range(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _path(scope).startswith("/files/"):
            headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"range"]
            scope = {**scope, "headers": headers}
        await app(scope, receive, send)

    return wrapped


def _stream_never_closes(app: ASGIApp) -> ASGIApp:
    """After the status stream's last event, the answer never ends: keepalive comments, forever."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _path(scope).endswith("/status/stream"):
            await app(scope, receive, send)
            return
        ended: list[bool] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                await send({**message, "more_body": True})
                ended.append(True)
                return
            await send(message)

        await app(scope, receive, hold)
        if ended:
            while True:  # until the client goes away (send raises) or the server shuts down
                await anyio.sleep(0.5)
                await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})

    return wrapped


def _stream_skips_completed(app: ASGIApp) -> ASGIApp:
    """The status stream closes without its COMPLETED event."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _path(scope).endswith("/status/stream"):
            await app(scope, receive, send)
            return

        async def drop(message: Message) -> None:
            body = message.get("body", b"")
            if message["type"] == "http.response.body" and b'"COMPLETED"' in body:
                message = {**message, "body": b""}
            await send(message)

        await app(scope, receive, drop)

    return wrapped


def _rewrite_stream_events(change: Callable[[list[Any], dict[str, Any]], None]) -> Wrapper:
    """Pass each `data:` event of a status stream through `change(lines_so_far, event)` (the emulator sends one
    event per body message); `lines_so_far` holds every log line the stream's events carried before."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not _path(scope).endswith("/status/stream"):
                await app(scope, receive, send)
                return
            lines: list[Any] = []

            async def rewrite(message: Message) -> None:
                body = bytes(message.get("body", b""))
                if message["type"] == "http.response.body" and body.startswith(b"data: "):
                    event = json.loads(body[len(b"data: ") :])
                    fresh = list(event["logs"]) if isinstance(event.get("logs"), list) else []
                    change(lines, event)
                    lines.extend(fresh)
                    message = {**message, "body": f"data: {json.dumps(event)}\n\n".encode()}
                await send(message)

            await app(scope, receive, rewrite)

        return wrapped

    return wrap


def _repeat_every_line(lines: list[Any], event: dict[str, Any]) -> None:
    """Each event carries every line so far (a stream that repeats lines: the client shows them twice)."""
    if isinstance(event.get("logs"), list):
        event["logs"] = [*lines, *event["logs"]]


def _keep_only_the_last_line(lines: list[Any], event: dict[str, Any]) -> None:
    """Each event carries only its newest line: the client loses the others."""
    if isinstance(event.get("logs"), list):
        event["logs"] = event["logs"][-1:]


def _not_h264(scope: Scope, message: Message) -> Message:
    """The media bytes are scrambled after the MP4 header: same length, not a decodable H.264 MP4."""
    if _path(scope).startswith("/files/") and message["type"] == "http.response.body":
        body = bytes(message.get("body", b""))
        return {**message, "body": body[:32] + bytes(len(body[32:]))}
    return message


def _cancel_does_nothing(app: ASGIApp) -> ASGIApp:
    """Cancel answers as usual, but the request is not cancelled: a queued request still runs and completes."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (scope["method"] == "PUT" and is_cancel(scope)):
            await app(scope, receive, send)
            return
        # Ask the app for the request's status instead: that answers for the request without cancelling it.
        answer: list[Message] = []

        async def collect(message: Message) -> None:
            answer.append(message)

        status_path = _path(scope).removesuffix("/cancel") + "/status"
        await app({**scope, "method": "GET", "path": status_path, "raw_path": status_path.encode()}, receive, collect)
        start = next(message for message in answer if message["type"] == "http.response.start")
        body = json.loads(b"".join(m.get("body", b"") for m in answer if m["type"] == "http.response.body") or b"0")
        if start["status"] in (200, 202):
            status = 400 if body.get("status") == "COMPLETED" else 202
            body = {"status": "ALREADY_COMPLETED" if status == 400 else "CANCELLATION_REQUESTED"}
        else:
            status = start["status"]
        data = json.dumps(body).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        await send({**start, "status": status, "headers": [*headers, (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    return wrapped


def _queue_position_grows() -> JsonRewrite:
    polls: dict[str, int] = {}

    def rewrite(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
        if is_status(scope) and isinstance(body, dict) and isinstance(body.get("queue_position"), int):
            request_id = str(body.get("request_id"))
            polls[request_id] = polls.get(request_id, 0) + 1
            body["queue_position"] += polls[request_id]
        return status, body

    return rewrite


def _cancel_after_completion_accepted(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    if is_cancel(scope) and status == 400:
        return 202, {"status": "CANCELLATION_REQUESTED"}
    return status, body


def _unexpected_methods_accepted(app: ASGIApp) -> ASGIApp:
    """PATCH and DELETE, which no route of fal's queue takes, answered 200 `{}` instead of 405."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in {"PATCH", "DELETE"}:
            await app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"{}"})

    return wrapped


@dataclass(frozen=True)
class Variant:
    """A broken emulator: `wrap` breaks it; the kit must report at least one of `rules`."""

    wrap: Wrapper
    rules: frozenset[str]


def _variant(wrap: Wrapper, *rules: str) -> Variant:
    return Variant(wrap, frozenset(rules))


def variants() -> dict[str, Variant]:
    """Fresh variants (some keep per-app state, so each test gets its own)."""
    return {
        "queue_position_missing": _variant(rewrite_json(_drop_queue_position), "queue_position_only_in_queue"),
        "running_answers_200": _variant(rewrite_json(_running_is_200), "status_code_by_state"),
        "result_200_before_completion": _variant(rewrite_json(_result_before_completion), "status_code_by_state"),
        "wrong_error_shape": _variant(rewrite_json(_wrong_error_shape), "fal_error_shape"),
        "sse_never_closes": _variant(_stream_never_closes, "sse_ends_at_completed"),
        "sse_skips_completed": _variant(_stream_skips_completed, "sse_ends_at_completed"),
        "sse_repeats_log_lines": _variant(_rewrite_stream_events(_repeat_every_line), "sse_matches_polling"),
        "sse_loses_log_lines": _variant(_rewrite_stream_events(_keep_only_the_last_line), "sse_matches_polling"),
        "mp4_dimensions_mismatch": _variant(
            rewrite_json(_swap_clip(r"^(\d+)x(\d+)_", lambda m: f"{m[2]}x{m[1]}_")), "media_dimensions"
        ),
        "mp4_audio_missing": _variant(
            rewrite_json(_swap_clip(r"_audio\.mp4$", lambda m: "_silent.mp4")), "media_audio"
        ),
        "mp4_not_h264": _variant(rewrite_messages(_not_h264), "media_h264"),
        "range_ignored": _variant(_ignore_range, "media_range"),
        "missing_x_fal_request_id": _variant(
            rewrite_messages(_strip_request_id), "x_fal_request_id", "response_headers_conformance"
        ),
        "completed_goes_back_to_in_progress": _variant(per_app(_completed_goes_back), "status_never_backwards"),
        "cancel_200_without_body": _variant(rewrite_json(_cancel_200_no_body), "cancel_answer", "status_code_by_state"),
        "wrong_file_size": _variant(rewrite_json(_wrong_file_size), "file_size_matches"),
        "logs_when_not_asked": _variant(rewrite_json(_logs_when_not_asked), "logs_key"),
        "cancel_does_not_stop_a_queued_request": _variant(_cancel_does_nothing, "cancelled_while_queued_never_runs"),
        "queue_position_grows": _variant(per_app(_queue_position_grows), "queue_position_decreases"),
        "cancel_after_completion_accepted": _variant(rewrite_json(_cancel_after_completion_accepted), "cancel_answer"),
        "refused_input_gets_a_video": _variant(
            rewrite_json(_refused_input_gets_a_video), "bad_input_refused_at_result"
        ),
    }


def coverage_variants() -> dict[str, Variant]:
    """Broken emulators only Schemathesis' coverage phase sees (it alone sends unexpected methods): the `default`
    and `thorough` profiles run it, `ci` does not, so the teeth test (profile `ci`) leaves these out."""
    return {"unexpected_methods_accepted": _variant(_unexpected_methods_accepted, "unsupported_method")}
