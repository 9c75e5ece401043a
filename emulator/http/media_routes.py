"""The generated videos, streamed from `fixtures/` (or the render cache) like fal's CDN serves them: public,
with Range.

`GET /files/{file_name}` answers 200 with the whole MP4 (`Content-Length` equal to the File's
`file_size`), 206 for a satisfiable `Range`, 416 otherwise, and 304 for a matching `If-None-Match`.
The ETag is the file's SHA-256 (a fixture clip's is the same on every machine). A rendered clip
(`{render key}.mp4`, see `fal_emulator.render`) is served from `state_dir/renders/` the same way.
A `?fault=truncate` or `?fault=slow` URL (from a scenario) serves the clip cut in half or in small slow chunks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from fal_emulator.errors import NotFound
from fal_emulator.http.rendering import emulator_of

# RFC 9110 §14.2 `Range: bytes=…` (byte ranges only). A Range of any other form is ignored: 200, whole file.
BYTE_RANGES = re.compile(r"bytes=\s*(\d+-\d*|-\d+)(\s*,\s*(\d+-\d*|-\d+))*\s*")


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: `*` or any listed tag, weakly compared (a `W/` prefix is ignored)."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


# A byte position beyond any file: longer numbers are read as this (RFC 9110 §14.1.2: a last-byte-pos past the
# end means the end; a first-byte-pos past the end is unsatisfiable, 416).
MAX_POSITION_DIGITS = 18


class ClipResponse(FileResponse):
    """A FileResponse that ignores a malformed or reversed Range instead of answering 400, and reads positions
    of any length (`bytes=0-` and 5,000 nines is the whole file)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = []
        for name, value in scope["headers"]:
            if name == b"range":
                value = _clamped(value)
                if value is None:
                    continue
            headers.append((name, value))
        await super().__call__({**scope, "headers": headers}, receive, send)


def _position(text: str) -> str:
    digits = text.strip().lstrip("0") or "0"
    return "9" * MAX_POSITION_DIGITS if len(digits) > MAX_POSITION_DIGITS else digits


def _clamped(value: bytes) -> bytes | None:
    """A valid Range with every position at most MAX_POSITION_DIGITS long, or None when it is malformed or reversed."""
    text = value.decode("latin-1")
    if not BYTE_RANGES.fullmatch(text):
        return None
    spans = [[_position(bound) if bound.strip() else "" for bound in part.split("-")]
             for part in text.split("=", 1)[1].split(",")]  # fmt: skip
    if not all(not start or not end or int(start) <= int(end) for start, end in spans):
        return None
    return ("bytes=" + ",".join(f"{start}-{end}" for start, end in spans)).encode("latin-1")


def recorded_file(path: Path, content_type: str, digest: str, request: Request) -> Response:
    """A recorded media file (named by its SHA-256), served like the clips: Range, ETag, 304."""
    etag = f'"{digest}"'
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers={"etag": etag})
    return ClipResponse(path, media_type=content_type, headers={"etag": etag, "cache-control": "public"})


async def recorded(request: Request) -> Response:
    """`GET /files/recorded/{sha256}/{file_name}`: the output media of a replayed cassette (`serve --replay`)."""
    digest = request.path_params["digest"]
    replay = emulator_of(request).replay
    found = replay.media_file(digest) if replay is not None else None
    if found is None or not found[0].is_file():
        raise NotFound(f"File {request.path_params['file_name']} not found")
    return recorded_file(found[0], found[1], digest, request)


class Held:
    """An ASGI response that calls `release` once it is sent (or abandoned): a rendered file stays out of the
    render cache's eviction while a client downloads it."""

    def __init__(self, response: Response, release: Callable[[], None]) -> None:
        self.response = response
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.response(scope, receive, send)
        finally:
            self.release()


async def media(request: Request) -> Response | Held:
    file_name = request.path_params["file_name"]
    if file_name == "upload":  # `/files/upload` is fal_client's CDN upload: POST only
        raise HTTPException(405, headers={"Allow": "POST"})
    emulator = emulator_of(request)
    clip = emulator.media.by_name(file_name)
    release = None if clip is not None else emulator.renders.hold(file_name)
    try:
        found = (clip.path, clip.file_size, clip.sha256) if clip is not None else emulator.renders.served(file_name)
        if found is None:
            raise NotFound(f"File {file_name} not found")
        response = _clip_response(request, *found)
    except BaseException:
        if release is not None:
            release()
        raise
    return response if release is None else Held(response, release)


def _clip_response(request: Request, path: Path, size: int, sha256: str) -> Response:
    etag = f'"{sha256}"'
    faults = set(request.query_params.get("fault", "").split(","))
    if faults & {"truncate", "slow"}:
        return faulty(path, size, truncate="truncate" in faults, slow="slow" in faults)
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers={"etag": etag})
    return ClipResponse(path, media_type="video/mp4", headers={"etag": etag, "cache-control": "public"})


SLOW_CHUNK, SLOW_PAUSE = 16 * 1024, 0.05  # bytes, seconds


def faulty(path: Path, size: int, *, truncate: bool, slow: bool) -> StreamingResponse:
    """The clip with `Content-Length: size`, but cut after half its bytes (truncate) and/or dribbled (slow)."""

    async def chunks() -> AsyncIterator[bytes]:
        limit = size // 2 if truncate else size
        with path.open("rb") as stream:
            sent = 0
            while sent < limit:
                chunk = stream.read(min(SLOW_CHUNK if slow else 256 * 1024, limit - sent))
                sent += len(chunk)
                yield chunk
                if slow:
                    await asyncio.sleep(SLOW_PAUSE)

    headers = {"content-length": str(size)}
    return StreamingResponse(chunks(), media_type="video/mp4", headers=headers)
