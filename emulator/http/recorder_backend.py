"""The recording proxy's state (`fal-emulator record`): where fal's hosts are upstream, what may be spent, and
what the recorder has seen; how a call is classified, how an answer is rewritten for the client (URLs pointing
here, output files fetched once and served from beside the cassette) and how an exchange goes into the cassette
(`fal_emulator.cassette`). The routes that forward calls with it are `fal_emulator.http.recorder`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from starlette.requests import Request

from fal_emulator.cassette import CassetteWriter, entry
from fal_emulator.replay import MEDIA_PATH
from fal_emulator.server import is_loopback

QUEUE_PATH = re.compile(r"^/(?P<app>.+?)/requests/(?P<id>[^/]+)(?P<tail>/status/stream|/status|/cancel|/response)?$")
TAILS = {"/status/stream": "stream", "/status": "status", "/cancel": "cancel", "/response": "result", None: "result"}
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
     "content-encoding", "accept-encoding", "proxy-authorization", "proxy-connection", "x-fal-target-url"}
)  # fmt: skip
FAL_HOSTS = {"queue": "https://queue.fal.run", "run": "https://fal.run", "rest": "https://rest.fal.ai",
             "cdn": "https://v3.fal.media"}  # fmt: skip


class SpendRefused(Exception):
    """A submit the budget does not allow; nothing was sent upstream."""


@dataclass
class SpendGuard:
    """At most `limit` USD of estimated cost; `cost(endpoint_id, arguments)` prices one request (USD), raising
    LookupError or ValueError for one it cannot price (which is refused)."""

    limit: float
    cost: Callable[[str, Any], float]
    spent: float = 0.0

    def charge(self, endpoint_id: str, arguments: Any) -> float:
        """Reserve one request's cost. Raises SpendRefused (with the reason) when it cannot or may not be spent."""
        if not isinstance(arguments, dict):
            return 0.0  # not a JSON object: fal rejects it without generating anything
        try:
            usd = float(self.cost(endpoint_id, arguments))
        except (LookupError, ValueError) as exc:
            raise SpendRefused(f"cannot price {endpoint_id}: {exc}; nothing was sent to fal") from None
        if self.spent + usd > self.limit + 1e-9:
            raise SpendRefused(
                f"{endpoint_id} would cost about ${usd:.2f} and ${self.spent:.2f} of --allow-spend ${self.limit:.2f} "
                "is spent; nothing was sent to fal"
            )
        self.spent = round(self.spent + usd, 4)
        return usd

    def refund(self, usd: float) -> None:
        """Give back a reservation whose request upstream did not accept (no video is generated then)."""
        self.spent = round(max(self.spent - usd, 0.0), 4)


@dataclass(frozen=True)
class Upstream:
    """Where each of fal's hosts is: real fal by default; for any other `queue` URL the others default to it
    (with `/run` for the run host), as an emulator serves them."""

    queue: str = FAL_HOSTS["queue"]
    run: str = FAL_HOSTS["run"]
    rest: str = FAL_HOSTS["rest"]
    cdn: str = FAL_HOSTS["cdn"]

    @classmethod
    def of(cls, queue: str | None) -> Upstream:
        if queue is None or queue.rstrip("/") == FAL_HOSTS["queue"]:
            return cls()
        base = queue.rstrip("/")
        return cls(queue=base, run=f"{base}/run", rest=base, cdn=base)

    def as_dict(self) -> dict[str, str]:
        return {"queue": self.queue, "run": self.run, "rest": self.rest, "cdn": self.cdn}

    def rewrites(self, base: str) -> list[tuple[str, str]]:
        """(upstream prefix, ours) pairs, longest prefix first."""
        pairs = {self.run: f"{base}/run", self.queue: base, self.rest: base, self.cdn: base}
        return sorted(pairs.items(), key=lambda pair: -len(pair[0]))

    def reachable_from(self) -> bool:
        """Whether upstream can call back a loopback URL of ours (it runs on this machine)."""
        return is_loopback(urlsplit(self.queue).hostname or "")


@dataclass
class Recorder:
    """The recording proxy's state: the cassette, the upstream client, and what it has seen so far."""

    upstream: Upstream
    cassette: CassetteWriter
    key: str
    guard: SpendGuard
    public_url: str | None = None
    http_base: Callable[[], str | None] = lambda: None
    submitted: dict[str, tuple[float, str]] = field(default_factory=dict)  # request id -> (monotonic, endpoint)
    webhooks: dict[str, str] = field(default_factory=dict)  # token -> the user's webhook URL
    uploads: dict[str, str] = field(default_factory=dict)  # token -> the upstream upload URL
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(60, read=900)))

    # -- what an exchange is -----------------------------------------------------------------------------

    def classify(self, method: str, path: str) -> tuple[str, str, str | None, str | None]:
        """(kind, upstream URL without query, endpoint id, request id) of a call to `path`."""
        if path.startswith("/run/"):  # `fal.run`, and its `/stream` (one SSE answer, recorded whole)
            return "run", self.upstream.run + path[4:], path[5:].removesuffix("/stream"), None
        if path == "/files/upload":
            return "upload", self.upstream.cdn + path, None, None
        if path.startswith(("/storage/", "/.well-known/")):
            return ("upload" if path.startswith("/storage/") else "other"), self.upstream.rest + path, None, None
        matched = QUEUE_PATH.match(path)
        if matched:
            request_id = matched["id"]
            endpoint = self.submitted.get(request_id, (0.0, None))[1]
            return TAILS[matched["tail"]], self.upstream.queue + path, endpoint, request_id
        if method == "POST":
            return "submit", self.upstream.queue + path, path.strip("/"), None
        return "other", self.upstream.queue + path, None, None

    def offset(self, request_id: str | None) -> dict[str, Any]:
        if request_id is None or request_id not in self.submitted:
            return {}
        return {"request_id": request_id, "offset": round(time.monotonic() - self.submitted[request_id][0], 3)}

    def upstream_headers(self, request: Request) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        scheme = headers.get("authorization", "").split(" ", 1)[0].lower()
        if scheme != "bearer":  # a CDN token the client got through us passes; anything else becomes the user's key
            headers["authorization"] = f"Key {self.key}"
        return headers

    # -- answers as the client sees them ------------------------------------------------------------------

    async def client_view(self, value: Any, base: str, media_base: str | None = None) -> Any:
        """`value` (a JSON answer) with upstream URLs pointing here and output Files fetched and served here
        (under `media_base`: `https://v3.fal.media` for a client that reached us through the HTTPS proxy)."""
        media_base = media_base or base
        if isinstance(value, dict):
            if isinstance(value.get("url"), str) and {"content_type", "file_size", "file_name"} & set(value):
                value = {**value, "url": await self.media_url(value["url"], media_base, value)}
            return {key: await self.client_view(item, base, media_base) for key, item in value.items()}
        if isinstance(value, list):
            return [await self.client_view(item, base, media_base) for item in value]
        if isinstance(value, str):
            for prefix, ours in self.upstream.rewrites(base):
                if value == prefix or value.startswith((prefix + "/", prefix + "?")):
                    return ours + value[len(prefix) :]
        return value

    async def media_url(self, url: str, base: str, file: Mapping[str, Any]) -> str:
        """Fetch an output file once (no credentials: media URLs are public or signed), store it beside the
        cassette, and answer where this server serves it. A file that cannot be fetched keeps its URL."""
        if url.startswith(f"{base}{MEDIA_PATH}/"):
            return url
        stored = self.cassette.media_for(url)
        if stored is None:
            try:
                answer = await self.client.get(url, follow_redirects=True)
            except httpx.HTTPError:
                return url
            if answer.status_code != 200:
                return url
            content_type = str(file.get("content_type") or answer.headers.get("content-type", ""))
            name = str(file.get("file_name") or PurePosixPath(urlsplit(url).path).name)
            stored = self.cassette.add_media(url, answer.content, content_type or "application/octet-stream", name)
        name = PurePosixPath(urlsplit(url).path).name or "media"
        return f"{base}{MEDIA_PATH}/{stored['sha256']}/{name}"

    def webhook_target(self, query: str, base: str) -> str:
        """The query with `fal_webhook` pointed at this server (when upstream can reach it)."""
        pairs = parse_qsl(query, keep_blank_values=True)
        user_url = next((value for name, value in pairs if name == "fal_webhook"), None)
        ours = self.public_url or (self.http_base() if self.upstream.reachable_from() else None)
        if not user_url or not ours:
            return query
        token = secrets.token_urlsafe(12)
        self.webhooks[token] = user_url
        hook = f"{ours.rstrip('/')}/_emulator/record/webhook/{token}"
        return urlencode([(name, hook if name == "fal_webhook" else value) for name, value in pairs])

    def record(self, kind: str, request: Request, url: str, body: bytes, answer: httpx.Response, content: bytes,
               started: str, seconds: float, fal: Mapping[str, Any]) -> None:  # fmt: skip
        self.cassette.add(
            entry(
                kind=kind, method=request.method, url=url, request_headers=list(request.headers.items()),
                request_body=body, status=answer.status_code, status_text=answer.reason_phrase,
                response_headers=list(answer.headers.items()), response_body=content, started=started,
                seconds=seconds, fal=fal,
            )
        )  # fmt: skip


def default_key(environ: Mapping[str, str]) -> str | None:
    """The user's fal key for upstream: `FAL_KEY`, or `FAL_KEY_ID:FAL_KEY_SECRET` (as fal_client reads them)."""
    if environ.get("FAL_KEY"):
        return environ["FAL_KEY"]
    if environ.get("FAL_KEY_ID") and environ.get("FAL_KEY_SECRET"):
        return f"{environ['FAL_KEY_ID']}:{environ['FAL_KEY_SECRET']}"
    return None


def cassette_path(value: str) -> Path:
    return Path(value).expanduser()
