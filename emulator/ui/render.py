"""How the page shows things: the Jinja2 environment and its filters, and the helpers that turn a request's
input and output into what a browser can display (input images, playable media on this emulator's origin).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request

from fal_emulator.clock import isoformat
from fal_emulator.fal_hosts import role_of
from fal_emulator.http.rendering import emulator_of
from fal_emulator.inputs import IMAGE_FIELDS

DATA_URI_SHOWN = 64  # characters of a data: URI shown in the input
UPLOADS = "/files/uploads/"


def duration(seconds: float | None) -> str:
    """`0.5` -> `0.50 s`, `75` -> `1 min 15 s`, `7200` -> `2 h 0 min`; None -> ``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def usd(amount: float | None) -> str:
    return "–" if amount is None else f"${amount:,.2f}"


def count(number: int) -> str:
    return f"{number:,}"


def query(base: Mapping[str, str], **changes: Any) -> str:
    """A query string: `base` with `changes`; empty values (None, "", 0) are left out."""
    values = {**base, **changes}
    return urllib.parse.urlencode({name: value for name, value in values.items() if value not in (None, "", 0)})


TEMPLATES = Environment(
    loader=PackageLoader("fal_emulator.ui", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters.update(duration=duration, usd=usd, count=count, clocktime=isoformat)
TEMPLATES.globals.update(query=query)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_url(url: str, request: Request) -> str | None:
    """A URL of this emulator's media (`/files/…`) as a path on the page's own origin, else None.

    Outputs name the host they were submitted on: the HTTPS listener (whose throwaway CA a browser does not
    trust), or fal's media host `v3.fal.media` when the client came through the proxy. As a path the page
    plays them from the listener it was loaded from.
    """
    parts = urllib.parse.urlsplit(url)
    if not parts.path.startswith("/files/") or parts.scheme not in ("http", "https", ""):
        return None
    host = parts.hostname or ""
    public = emulator_of(request).settings.public_url
    own = {request.url.hostname or "", (urllib.parse.urlsplit(public).hostname or "") if public else ""}
    if host and host not in own and not _loopback(host) and role_of(parts.netloc) != "media":
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class MediaFile:
    """A fal File object of an output: `kind` is `video`, `image` or `file`; `src` a local path or None."""

    field: str
    url: str
    content_type: str
    kind: str
    src: str | None


def media_files(output: Any, localize: Callable[[str], str | None], field: str = "") -> list[MediaFile]:
    """Every File object (`{"url", "content_type", …}`) in an output, depth first."""
    found: list[MediaFile] = []
    if isinstance(output, dict):
        url, content_type = output.get("url"), output.get("content_type")
        if isinstance(url, str) and isinstance(content_type, str):
            kind = content_type.partition("/")[0]
            found.append(MediaFile(field, url, content_type, kind if kind in ("video", "image") else "file",
                                   localize(url)))  # fmt: skip
        for key, value in output.items():
            found.extend(media_files(value, localize, f"{field}.{key}" if field else str(key)))
    elif isinstance(output, list):
        for index, value in enumerate(output):
            found.extend(media_files(value, localize, f"{field}[{index}]"))
    return found


@dataclass(frozen=True)
class InputImage:
    field: str
    url: str


def _strings(value: Any, field: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{field}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{field}.{key}" if field else str(key))


def input_images(arguments: Any) -> list[InputImage]:
    """The input's images the page can show, in input order: `data:image/…` URIs, and files uploaded to this
    emulator named by an image field (`image_url`, `image_urls`, …). Other URLs are never fetched (the
    emulator is offline); the page shows them as text."""
    images = []
    for field, value in _strings(arguments, ""):
        image_field = field.partition("[")[0] in IMAGE_FIELDS
        if value.startswith("data:image/") or (image_field and UPLOADS in value):
            images.append(InputImage(field, value))
    return images


def shown_input(value: Any) -> Any:
    """The input as submitted, with each `data:` URI cut to its start and its length (a page, not a dump)."""
    if isinstance(value, str) and value.startswith("data:") and len(value) > DATA_URI_SHOWN:
        return f"{value[:DATA_URI_SHOWN]}… ({len(value):,} characters)"
    if isinstance(value, list):
        return [shown_input(item) for item in value]
    if isinstance(value, dict):
        return {key: shown_input(item) for key, item in value.items()}
    return value
