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

Two more rules keep a web page in the user's browser from using a local emulator (`browser_error`):

- cross-site request forgery: a call that changes state (any method but GET, HEAD, OPTIONS) whose `Origin`
  is another site is refused 403. Browsers send `Origin` with every such call; an origin on a loopback name
  (`localhost`, `127.0.0.1`, `[::1]`, any port: the user's own dev server) or on the emulator's own host is
  allowed, `Origin: null` (a sandboxed frame, a `file:` page) is not. Tools that send no `Origin` (the
  clients, curl, the tests) are not concerned;
- DNS rebinding: with no token, a loopback client must name a loopback host, the `--host` the server binds,
  or `--public-url`'s host in `Host`: a page of `evil.example` whose name was rebound to 127.0.0.1 sends
  `Host: evil.example` and is refused 403, so it can read nothing either.
"""

from __future__ import annotations

import hmac
import ipaddress
import urllib.parse

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


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _header(scope: Scope, name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in scope.get("headers", []) if key == name), None)


def _hostname(authority: str) -> str:
    """The host of a `Host` value or URL authority, lowercased, without port or IPv6 brackets."""
    try:
        return (urllib.parse.urlsplit(f"//{authority}").hostname or "").lower()
    except ValueError:
        return ""


def is_loopback_name(hostname: str) -> bool:
    """`localhost`, `*.localhost` (RFC 6761) or a loopback IP address."""
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _netloc(url: str) -> str:
    """A URL's authority, lowercased; "" when it cannot be parsed (`http://[`)."""
    try:
        return urllib.parse.urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def _own_hosts(settings: Settings) -> set[str]:
    hosts = {settings.host.lower()}
    if settings.public_url:
        hosts.add(_hostname(_netloc(settings.public_url)))
    return hosts


def browser_error(scope: Scope, settings: Settings) -> FalError | None:
    """The 403 for a call a web page made the user's browser send (cross-site, or through a rebound DNS name),
    or None. See the module docstring."""
    origin = _header(scope, b"origin")
    if origin is not None and scope["method"] not in SAFE_METHODS:
        origin_netloc = "" if origin == "null" else _netloc(origin)
        origin_host = _hostname(origin_netloc)
        same = origin_host and (origin_host in _own_hosts(settings) or is_loopback_name(origin_host))
        if not same and (not origin_netloc or origin_netloc != (_header(scope, b"host") or "").lower()):
            detail = f"The control plane refuses calls that change state from another site (Origin: {origin})"
            return FalError({"detail": detail}, status_code=403)
    client = scope.get("client")
    if not settings.control_token and isinstance(client, list | tuple) and client and _is_ip(str(client[0])):
        host = _hostname(_header(scope, b"host") or "")
        if host and not is_loopback_name(host) and host not in _own_hosts(settings):
            detail = (
                f"The control plane answers only its own host names without a control token (Host: {host}); "
                "use 127.0.0.1 or localhost, or set --public-url or --control-token"
            )
            return FalError({"detail": detail}, status_code=403)
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def control_access_error(scope: Scope, settings: Settings) -> FalError | None:
    """The 401/403 a control-plane call gets under the rules above, or None when it may proceed."""
    refused = browser_error(scope, settings)
    if refused is not None:
        return refused
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
