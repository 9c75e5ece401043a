"""The application factory and the one route list.

uvicorn --factory emulator.http.app:create_app
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.catalog import Catalog, load_catalog
from emulator.errors import FalError
from emulator.http import media_routes, queue_routes
from emulator.http.rendering import REQUEST_ID_HEADER, emulator_of, fal_json, is_request_id
from emulator.service import Emulator
from emulator.settings import Settings

CONTROL_PREFIX = "/_emulator"


async def health(request: Request) -> JSONResponse:
    emulator = emulator_of(request)
    return JSONResponse({"status": "ok", "endpoints": len(emulator.catalog)})


ROUTES = [
    Route(f"{CONTROL_PREFIX}/health", health, methods=["GET"]),
    Route("/files/{file_name}", media_routes.media, methods=["GET", "HEAD"]),
    Route("/run/{endpoint_id:path}", queue_routes.run, methods=["POST"]),
    Route("/{app_path:path}/requests/{request_id}/status/stream", queue_routes.stream_status, methods=["GET"]),
    Route("/{app_path:path}/requests/{request_id}/status", queue_routes.status, methods=["GET"]),
    Route("/{app_path:path}/requests/{request_id}/cancel", queue_routes.cancel, methods=["PUT"]),
    Route("/{app_path:path}/requests/{request_id}/response", queue_routes.result, methods=["GET"]),
    Route("/{app_path:path}/requests/{request_id}", queue_routes.result, methods=["GET"]),
    Route("/{endpoint_id:path}", queue_routes.submit, methods=["POST"]),
]


def _answer_id(request: Request) -> str:
    request_id = request.path_params.get("request_id")
    return request_id if is_request_id(request_id) else emulator_of(request).answer_ids.new()


async def fal_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FalError)
    return fal_json(exc.body, exc.status_code, _answer_id(request), exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in fal's shape (fal apps answer `{"detail": "Path /x not found"}`)."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    status_code, headers = exc.status_code, exc.headers
    # Every path matches the submit route (POST), so Starlette answers 405 for any other method; that is
    # only right where some other route has this path, or the path is a known endpoint.
    if status_code == 405 and not _other_method_fits(request):
        status_code, headers = 404, None
    detail = f"Path {path} not found" if status_code == 404 else exc.detail
    return fal_json({"detail": detail}, status_code, _answer_id(request), headers)


def _other_method_fits(request: Request) -> bool:
    if emulator_of(request).catalog.get(request.url.path) is not None:
        return True
    scope = {**request.scope, "method": "GET" if request.method != "GET" else "PUT"}
    return any(route.matches(scope)[0] is not Match.NONE for route in ROUTES[:-1])


async def server_error(request: Request, exc: Exception) -> Response:
    return fal_json({"detail": "Internal Server Error"}, 500, _answer_id(request))


class RequestIdMiddleware:
    """Makes sure every answer carries `x-fal-request-id`, whichever layer produced it."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == REQUEST_ID_HEADER.encode() for name, _ in headers):
                    headers.append((REQUEST_ID_HEADER.encode(), self.emulator.answer_ids.new().encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(settings: Settings | None = None, *, catalog: Catalog | None = None) -> Starlette:
    """Build the emulator app. Reads `FAL_EMULATOR_*` settings when `settings` is None.

    Raises emulator.catalog.CatalogError for an unreadable `openapi/` document and OSError when the
    fixtures manifest is missing.
    """
    settings = settings or Settings.from_env()
    emulator = Emulator(settings, catalog=catalog or load_catalog(settings.openapi_dir))
    app = Starlette(
        routes=ROUTES,
        exception_handlers={FalError: fal_error, HTTPException: http_error, Exception: server_error},
    )
    app.state.emulator = emulator
    app.add_middleware(RequestIdMiddleware, emulator=emulator)
    return app
