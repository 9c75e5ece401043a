"""Route a request sent to one of fal's own hostnames (through the HTTPS proxy) to what fal serves there.

`fal_emulator.fal_hosts` says which host plays which role; here each role keeps only its own paths:

- `queue` (`queue.fal.run`): the queue API (not `/run/`, `/storage/`, `/files/`, nor the JWKS);
- `run` (`fal.run`): every path is a synchronous call: `/fal-ai/veo3` is served as `/run/fal-ai/veo3`;
- `rest` (`rest.fal.ai`, `rest.alpha.fal.ai`): `/storage/...` and `/.well-known/jwks.json`;
- `media` (`v3.fal.media`, ...): `/files/...`.

Anything else on a fal host is `404 {"detail": "Path /x not found"}`, as fal's apps answer. The control plane
(`/_emulator/...`) answers on every host. A request to any other `Host` (the emulator's own address) is
untouched.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from fal_emulator.fal_hosts import MEDIA_BASE, Role, role_of
from fal_emulator.http.rendering import CONTROL_PREFIX, base_url, fal_json
from fal_emulator.service import Emulator

SERVED: dict[Role, tuple[str, ...]] = {
    "rest": ("/storage/", "/.well-known/jwks.json"),
    "media": ("/files/",),
}
NOT_ON_QUEUE = ("/run/", "/storage/", "/files/", "/.well-known/")


def host_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return str(value.decode("latin-1"))
    return None


def media_base_url(request: Request) -> str:
    """Where outputs and uploaded files are served: `https://v3.fal.media` when the request came to one of
    fal's hosts (through the proxy), else the scheme and authority it reached (`https://127.0.0.1:8471`)."""
    return MEDIA_BASE if role_of(request.headers.get("host")) is not None else base_url(request)


def _served(role: Role, path: str) -> bool:
    if path.startswith(CONTROL_PREFIX):
        return True
    if role == "queue":
        return not path.startswith(NOT_ON_QUEUE)
    if role == "run":
        return True
    return path.startswith(SERVED[role])


class FalHostMiddleware:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        role = role_of(host_of(scope)) if scope["type"] == "http" else None
        if role is None:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if not _served(role, path):
            response = fal_json({"detail": f"Path {path} not found"}, 404, self.emulator.answer_ids.new())
            await response(scope, receive, send)
            return
        if role == "run" and not path.startswith(CONTROL_PREFIX):
            path = "/run" + path
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)
