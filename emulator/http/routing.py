"""A Starlette `Router` that tries only the routes a request's first path segment can reach.

Starlette's router tries its routes in order, one regular expression each, until one matches: with the
control plane's routes first and the queue's catch-all routes (`/{app_path:path}/requests/...`) last, a
status poll would try twenty patterns before its own. A route whose path starts with a literal segment
(`/_emulator/...`, `/files/...`) can only match paths with that first segment, so each request is matched
against the routes of its first segment and the catch-all routes, in the order of the one route list: the
same route wins, the same 404s and 405s are answered, and the same trailing-slash redirects are made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Router
from starlette.types import Receive, Scope, Send


def first_segment(route: BaseRoute) -> str | None:
    """The literal first segment of a route's path (`"files"` for `/files/{name}`); None when the route can
    match any first segment (`/{app_path:path}/...`) or has no path."""
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    segment = path[1:].partition("/")[0]
    return None if "{" in segment else segment


class SegmentRouter(Router):
    """`Router(routes, **options)` that matches each HTTP request against its first segment's share of `routes`.

    The shares are made again when `routes` changes length (a route added after start).
    """

    def __init__(self, routes: Sequence[BaseRoute], **options: Any) -> None:
        super().__init__(routes, **options)
        self._indexed = -1
        self._by_segment: dict[str, Router] = {}
        self._anywhere = Router()

    def _index(self) -> None:
        segments = {segment for route in self.routes if (segment := first_segment(route)) is not None}

        def share(segment: str | None) -> Router:
            routes = [route for route in self.routes if first_segment(route) in (segment, None)]
            return Router(routes, redirect_slashes=self.redirect_slashes, default=self.default)

        self._by_segment = {segment: share(segment) for segment in segments}
        self._anywhere = share(None)
        self._indexed = len(self.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await super().__call__(scope, receive, send)
            return
        if len(self.routes) != self._indexed:
            self._index()
        scope.setdefault("router", self)  # url_for looks every route up, not only this share's
        segment = scope["path"][1:].partition("/")[0]
        await self._by_segment.get(segment, self._anywhere)(scope, receive, send)

    def full_match(self, scope: Scope) -> tuple[BaseRoute, dict[str, Any]] | None:
        """The route this router would run for an HTTP `scope`, with its path parameters; None when no route
        matches fully (a 404 or 405) or the scope is not a plain HTTP one."""
        if scope["type"] != "http" or scope.get("root_path"):
            return None
        if len(self.routes) != self._indexed:
            self._index()
        segment = scope["path"][1:].partition("/")[0]
        for route in self._by_segment.get(segment, self._anywhere).routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope.get("path_params", {})
        return None
