"""fal's storage API (`rest.fal.ai` and the `v3.fal.media` CDN), as the official clients call it.

    POST /storage/upload/initiate?storage_type=…   {content_type, file_name} -> {upload_url, file_url}
    PUT  /storage/upload/{id}/{name}               the bytes (no auth: the URL is the permission)
    POST /storage/auth/token?storage_type=fal-cdn-v3  {} -> {token, token_type, base_url, expires_at}
    POST /files/upload                             bytes, Bearer token, X-Fal-File-Name -> {access_url}
    GET  /files/uploads/{id}/{name}                the uploaded file

Sources: fal_client 1.0.3 `client.py` (`upload`, `CDNTokenManager`), @fal-ai/client 1.10.1 `storage.js`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from fal_emulator.clock import isoformat
from fal_emulator.errors import AuthenticationError, ModelError, NotFound, error_item
from fal_emulator.http.auth import authenticate
from fal_emulator.http.control_routes import body
from fal_emulator.http.host_routing import media_base_url
from fal_emulator.http.rendering import base_url, emulator_of
from fal_emulator.limits import media_type_problem

TOKEN_SECONDS = 3600


def _content_type(value: Any, loc: list[str | int]) -> str | None:
    """A client-given content type that is stored and served back: None or a media type. Raises ModelError 422."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ModelError([error_item(loc, "Input should be a valid string", "string_type", input_=value)])
    problem = media_type_problem(value)
    if problem:
        raise ModelError([error_item(loc, f"Value error, {problem}", "value_error", input_=value)])
    return value


async def initiate(request: Request) -> JSONResponse:
    """`{file_name?: string, content_type?: media type}`; another type is 422 in fal's (FastAPI's) shape."""
    authenticate(request)
    payload = await body(request)
    file_name = payload.get("file_name")
    if file_name is not None and not isinstance(file_name, str):
        raise ModelError([error_item(["body", "file_name"], "Input should be a valid string", "string_type",
                                     input_=file_name)])  # fmt: skip
    content_type = _content_type(payload.get("content_type"), ["body", "content_type"])
    upload = emulator_of(request).uploads.initiate(file_name, content_type)
    base = base_url(request)
    return JSONResponse(
        {
            "upload_url": f"{base}/storage/upload/{upload.upload_id}/{upload.file_name}",
            "file_url": media_base_url(request) + upload.url_path,
        }
    )


async def put_upload(request: Request) -> JSONResponse:
    """The bytes of an initiated upload, to the exact name it was initiated with (else 404, nothing written).
    It is served with the initiated content type, as a signed upload URL fixes it."""
    upload_id = request.path_params["upload_id"]
    uploads = emulator_of(request).uploads
    reserved = uploads.reserved(upload_id)
    if reserved is None or reserved.file_name != request.path_params["file_name"]:
        raise NotFound(f"Upload {upload_id} not found")
    upload = uploads.write(upload_id, await request.body())
    assert upload is not None
    return JSONResponse({"file_url": media_base_url(request) + upload.url_path})


async def token(request: Request) -> JSONResponse:
    authenticate(request)
    emulator = emulator_of(request)
    return JSONResponse(
        {
            "token": emulator.uploads.new_token(),
            "token_type": "Bearer",
            "base_url": media_base_url(request),
            "expires_at": isoformat(emulator.clock.now() + TOKEN_SECONDS),
        }
    )


async def cdn_upload(request: Request) -> JSONResponse:
    uploads = emulator_of(request).uploads
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or credential.strip() not in uploads.tokens:
        authenticate(request)  # a fal key works too; anything else is 401
    if not request.headers.get("authorization"):
        raise AuthenticationError("Missing Authorization header. Send 'Authorization: Bearer <CDN token>'.")
    content_type = _content_type(request.headers.get("content-type"), ["header", "content-type"])
    upload = uploads.initiate(request.headers.get("x-fal-file-name"), content_type)
    uploads.write(upload.upload_id, await request.body())
    return JSONResponse({"access_url": media_base_url(request) + upload.url_path})


async def uploaded_file(request: Request) -> Response:
    upload = emulator_of(request).uploads.get(request.path_params["upload_id"], request.path_params["file_name"])
    if upload is None:
        raise NotFound(f"File {request.url.path} not found")
    headers = {"X-Content-Type-Options": "nosniff"}
    return FileResponse(upload.path, media_type=upload.content_type, headers=headers)
