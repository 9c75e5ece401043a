"""The generated videos, streamed from `fixtures/` like fal's CDN serves them: public, with Range.

`GET /files/{file_name}` answers 200 with the whole MP4 (`Content-Length` equal to the File's
`file_size`), 206 for a satisfiable `Range`, 416 otherwise, and 304 for a matching `If-None-Match`.
The ETag is the clip's SHA-256, so it is the same on every machine.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from emulator.errors import NotFound
from emulator.http.rendering import emulator_of


async def media(request: Request) -> Response:
    file_name = request.path_params["file_name"]
    clip = emulator_of(request).media.by_name(file_name)
    if clip is None:
        raise NotFound(f"File {file_name} not found")
    etag = f'"{clip.sha256}"'
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers={"etag": etag})
    return FileResponse(clip.path, media_type="video/mp4", headers={"etag": etag, "cache-control": "public"})
