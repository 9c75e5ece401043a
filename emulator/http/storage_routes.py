"""fal's storage API (`rest.fal.ai` and the `v3.fal.media` CDN), as the official clients call it.

    POST /storage/upload/initiate?storage_type=…   {content_type, file_name} -> {upload_url, file_url}
    PUT  /storage/upload/{id}/{name}               the bytes (no auth: the URL is the permission)
    POST /storage/auth/token?storage_type=fal-cdn-v3  {} -> {token, token_type, base_url, expires_at}
    POST /files/upload                             bytes, Bearer token, X-Fal-File-Name -> {access_url}
    GET  /files/uploads/{id}/{name}                the uploaded file

Sources: fal_client 1.0.3 `client.py` (`upload`, `CDNTokenManager`), @fal-ai/client 1.10.1 `storage.js`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from fal_emulator.clock import isoformat
from fal_emulator.errors import AuthenticationError, NotFound
from fal_emulator.http.auth import authenticate
from fal_emulator.http.control_routes import body
from fal_emulator.http.host_routing import media_base_url
from fal_emulator.http.rendering import base_url, emulator_of

TOKEN_SECONDS = 3600


async def initiate(request: Request) -> JSONResponse:
    authenticate(request)
    payload = await body(request)
    upload = emulator_of(request).uploads.initiate(payload.get("file_name"), payload.get("content_type"))
    base = base_url(request)
    return JSONResponse(
        {
            "upload_url": f"{base}/storage/upload/{upload.upload_id}/{upload.file_name}",
            "file_url": media_base_url(request) + upload.url_path,
        }
    )


async def put_upload(request: Request) -> JSONResponse:
    upload_id = request.path_params["upload_id"]
    upload = emulator_of(request).uploads.write(upload_id, await request.body(), request.headers.get("content-type"))
    if upload is None or upload.file_name != request.path_params["file_name"]:
        raise NotFound(f"Upload {upload_id} not found")
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
    content_type = request.headers.get("content-type")
    upload = uploads.initiate(request.headers.get("x-fal-file-name"), content_type)
    uploads.write(upload.upload_id, await request.body())
    return JSONResponse({"access_url": media_base_url(request) + upload.url_path})


async def uploaded_file(request: Request) -> Response:
    upload = emulator_of(request).uploads.get(request.path_params["upload_id"], request.path_params["file_name"])
    if upload is None:
        raise NotFound(f"File {request.url.path} not found")
    return FileResponse(upload.path, media_type=upload.content_type)
