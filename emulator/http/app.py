"""The application factory and the one route list.

uvicorn --factory fal_emulator.http.app:create_app
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from fal_emulator.catalog import Catalog, load_catalog
from fal_emulator.errors import ConnectionDrop, FalError, GatewayError
from fal_emulator.fal_hosts import role_of
from fal_emulator.http import control_routes, media_routes, openapi_routes, queue_routes, storage_routes
from fal_emulator.http.access import ControlAccessMiddleware
from fal_emulator.http.host_routing import NOT_ON_QUEUE, FalHostMiddleware, host_of
from fal_emulator.http.limits import LimitsMiddleware
from fal_emulator.http.middleware import EdgeMiddleware, Shortcut, drop
from fal_emulator.http.rendering import NO_REQUEST_ID, emulator_of, fal_json, is_request_id
from fal_emulator.http.routing import SegmentRouter
from fal_emulator.scenarios import ScenarioError
from fal_emulator.service import Emulator
from fal_emulator.settings import Settings
from fal_emulator.ui import routes as ui_routes
from fal_emulator.webhooks import Signer, Webhooks


async def jwks(request: Request) -> JSONResponse:
    """The public key that verifies webhook signatures (fal serves its own at rest.fal.ai)."""
    return JSONResponse(request.app.state.webhooks.signer.jwks)


logger = logging.getLogger("fal_emulator.http")

ROUTES = [
    *control_routes.ROUTES,
    *ui_routes.ROUTES,
    *openapi_routes.ROUTES,
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/storage/upload/initiate", storage_routes.initiate, methods=["POST"]),
    Route("/storage/upload/{upload_id}/{file_name}", storage_routes.put_upload, methods=["PUT"]),
    Route("/storage/auth/token", storage_routes.token, methods=["POST"]),
    Route("/files/upload", storage_routes.cdn_upload, methods=["POST"]),
    Route("/files/uploads/{upload_id}/{file_name}", storage_routes.uploaded_file, methods=["GET", "HEAD"]),
    Route("/files/recorded/{digest}/{file_name}", media_routes.recorded, methods=["GET", "HEAD"]),
    Route("/files/{file_name}", media_routes.media, methods=["GET", "HEAD"]),
    Route("/run/{endpoint_id:path}/stream", queue_routes.stream_run, methods=["POST"]),
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


async def scenario_error(request: Request, exc: Exception) -> Response:
    body = {"detail": str(exc), "error_type": "bad_request"}
    return fal_json(body, 400, _answer_id(request), {"X-Fal-Error-Type": "bad_request"})


class DroppedResponse(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await drop(send)


async def connection_drop(request: Request, exc: Exception) -> Response:
    return DroppedResponse()


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return Response(exc.html, exc.status_code, media_type="text/html", headers={NO_REQUEST_ID: "1"})


def _other_method_fits(request: Request) -> bool:
    if emulator_of(request).catalog.get(request.url.path) is not None:
        return True
    scope = {**request.scope, "method": "GET" if request.method != "GET" else "PUT"}
    return any(route.matches(scope)[0] is not Match.NONE for route in ROUTES[:-1])


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


async def client_disconnect(request: Request, exc: Exception) -> Response:
    """The client went away before sending its whole body: one INFO line, no traceback; the answer (fal's
    499 `client_disconnected`) goes nowhere."""
    logger.info("client disconnected before its request body was complete: %s %s", request.method, request.url.path)
    body = {"detail": "Client disconnected", "error_type": "client_disconnected"}
    return fal_json(body, 499, _answer_id(request), {"X-Fal-Error-Type": "client_disconnected"})


async def server_error(request: Request, exc: Exception) -> Response:
    return fal_json({"detail": "Internal Server Error"}, 500, _answer_id(request))


def plain_poll(router: SegmentRouter, emulator: Emulator) -> Shortcut:
    """The edge's shortcut for plain status polls: a call that the router would give the status route, sent
    to the emulator's own address or to fal's queue host (where `FalHostMiddleware` serves the queue paths as
    they are), answered by `queue_routes.plain_status` or else (None) by the app."""

    def answer(scope: Scope) -> tuple[int, bytes, str] | None:
        role = role_of(host_of(scope))
        if role is not None and (role != "queue" or scope["path"].startswith(NOT_ON_QUEUE)):
            return None
        found = router.full_match(scope)
        if found is None or getattr(found[0], "endpoint", None) is not queue_routes.status:
            return None
        path_params = found[1]
        plain = queue_routes.plain_status(emulator, scope, path_params)
        return None if plain is None else (*plain, path_params["request_id"])

    return answer


def create_app(settings: Settings | None = None, *, catalog: Catalog | None = None) -> Starlette:
    """Build the emulator app. Reads `FAL_EMULATOR_*` settings when `settings` is None.

    Raises fal_emulator.catalog.CatalogError for an unreadable `openapi/` document and OSError when the
    fixtures manifest is missing. Webhooks are delivered while the app's lifespan runs.
    """
    settings = settings or Settings.from_env()
    emulator = Emulator(settings, catalog=catalog or load_catalog(settings.openapi_dir))
    webhooks = Webhooks(emulator, Signer(settings.state_dir))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        webhooks.start()
        try:
            yield
        finally:
            emulator.renders.close()  # no render outlives the server (requests stay IN_PROGRESS in the store)
            await webhooks.stop()

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={
            FalError: fal_error,
            ScenarioError: scenario_error,
            GatewayError: gateway_error,
            ConnectionDrop: connection_drop,
            HTTPException: http_error,
            ClientDisconnect: client_disconnect,
            Exception: server_error,
        },
    )
    router = app.router = SegmentRouter(ROUTES, lifespan=lifespan)  # the same routes, by first path segment
    app.state.emulator = emulator
    app.state.webhooks = webhooks
    app.add_middleware(ControlAccessMiddleware, emulator=emulator)  # innermost: sees the proxied path
    # fal's own hostnames, through the HTTPS proxy: inside the edge (journal, faults, request ids), which sees
    # the path as sent
    app.add_middleware(FalHostMiddleware, emulator=emulator)
    app.add_middleware(EdgeMiddleware, emulator=emulator, shortcut=plain_poll(router, emulator))
    app.add_middleware(LimitsMiddleware, emulator=emulator)  # outermost: the input limits
    return app
