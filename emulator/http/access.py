"""Who may call the control plane (`/_emulator/…`), however the app was started.

The rule, checked by `ControlAccessMiddleware` for every control-plane path except the read-only
`OPEN_PATHS` (health and the OpenAPI documents):

- with a control token set (`--control-token`, `FAL_EMULATOR_CONTROL_TOKEN`; `fal-emulator serve` generates
  one when it listens beyond loopback), every call must carry it in `X-Fal-Emulator-Token`, else 401 (the
  dashboard, `/_emulator/ui`, checks it itself: the header, its cookie or `?token=`);
- with no token, only loopback clients may call it (127.0.0.0/8, ::1; also a client with no IP address:
  a Unix socket or an in-process test client), else 403. So `uvicorn --factory
  fal_emulator.http.app:create_app --host 0.0.0.0`, which cannot generate a token, leaves `/_emulator/reset`
  closed to the network. Behind a reverse proxy on the same host every client looks local: set a token.

The client address is the ASGI scope's `client` (uvicorn's `--proxy-headers` rewrites it from
`X-Forwarded-For` only for trusted proxies).
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from fal_emulator.errors import FalError
from fal_emulator.http.rendering import CONTROL_PREFIX
from fal_emulator.service import Emulator
from fal_emulator.settings import Settings

TOKEN_HEADER = "x-fal-emulator-token"
UI_PREFIX = f"{CONTROL_PREFIX}/ui"
OPEN_PATHS = frozenset(f"{CONTROL_PREFIX}/{name}" for name in ("health", "openapi.json", "openapi-sync.json"))


def is_local_client(client: object) -> bool:
    """Is the ASGI `client` on loopback, or not an IP peer at all (Unix socket, in-process)?"""
    if not isinstance(client, list | tuple) or not client:
        return True
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return True


def control_access_error(scope: Scope, settings: Settings) -> FalError | None:
    """The 401/403 a control-plane call gets under the rule above, or None when it may proceed."""
    token = settings.control_token
    if token and (scope["path"] == UI_PREFIX or scope["path"].startswith(UI_PREFIX + "/")):
        return None  # the dashboard's own check (fal_emulator.ui.routes.allowed)
    if token:
        sent = next((value for name, value in scope.get("headers", []) if name == TOKEN_HEADER.encode()), b"")
        if hmac.compare_digest(sent, token.encode()):
            return None
        return FalError({"detail": f"The control plane needs the {TOKEN_HEADER} header"}, status_code=401)
    if is_local_client(scope.get("client")):
        return None
    detail = (
        "The control plane answers only loopback clients when no control token is set "
        "(--control-token / FAL_EMULATOR_CONTROL_TOKEN)"
    )
    return FalError({"detail": detail}, status_code=403)


def is_control_path(path: str) -> bool:
    return (path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")) and path not in OPEN_PATHS


class ControlAccessMiddleware:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_control_path(scope["path"]):
            error = control_access_error(scope, self.emulator.settings)
            if error is not None:
                await JSONResponse(error.body, error.status_code)(scope, receive, send)
                return
        await self.app(scope, receive, send)
