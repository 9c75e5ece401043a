"""The input-limits policy: what the edge accepts before anything is parsed further, stored or reflected.

One policy for every route and every store (the HTTP layer applies it in `fal_emulator.http.limits`):

- a request body of at most `Settings.max_body_bytes` (default `DEFAULT_MAX_BODY_BYTES`, 40 MiB: three
  8 MB images inline as base64 `data:` URIs, as `reference-to-video` takes them, fit), else 413;
- JSON nested at most `MAX_JSON_DEPTH` arrays/objects deep, with number literals of at most
  `MAX_NUMBER_CHARS` characters, finite, and no `NaN`/`Infinity` (`load_json`). Every store must encode and
  decode any value within these limits (tests/test_limits.py checks each store);
- header values and URLs that are stored or echoed: no control characters (CR, LF, NUL, ...), a valid
  host and port (`url_problem`, `header_problem`, `media_type_problem`).

This module is core: it imports nothing from HTTP frameworks.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import urllib.parse
from typing import Any

DEFAULT_MAX_BODY_BYTES = 40 * 1024 * 1024  # bytes
MAX_JSON_DEPTH = 64  # nested arrays/objects, the outermost counted
MAX_NUMBER_CHARS = 100  # characters of one JSON number literal
MAX_URL_CHARS = 8192

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# RFC 9110 §5.6.2 token characters, and §8.3.1 media-type = type "/" subtype *( OWS ";" OWS parameter ).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=({_TOKEN}|\"[^\"\\]*\"))*\s*")
# A DNS name (RFC 1123 labels; `_` tolerated, as resolvers do), after IDNA for non-ASCII names.
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


class JsonLimitError(ValueError):
    """A JSON document beyond the limits: too deep, a number too long, not finite, or `NaN`."""


def _number(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonLimitError(f"a number of {len(text)} characters is over the limit of {MAX_NUMBER_CHARS}")
    return text


def _parse_int(text: str) -> int:
    return int(_number(text))


def _parse_float(text: str) -> float:
    value = float(_number(text))
    if math.isinf(value):
        raise JsonLimitError(f"number {text[:20]} is out of range")
    return value


def _reject_constant(name: str) -> Any:
    raise JsonLimitError(f"{name} is not valid JSON")


def json_depth(value: Any) -> int:
    """How many arrays/objects deep `value` nests (a scalar is 0). Iterative: any depth is safe to measure."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def load_json(raw: bytes | str) -> Any:
    """Strict JSON within the limits. Raises json.JSONDecodeError (malformed), UnicodeError (not UTF-8,
    or a lone surrogate) or JsonLimitError (too deep, a number too long or infinite, `NaN`/`Infinity`)."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int)
    except RecursionError:
        raise JsonLimitError(f"nesting deeper than {MAX_JSON_DEPTH} levels") from None
    depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise JsonLimitError(f"nesting {depth} levels deep is over the limit of {MAX_JSON_DEPTH}")
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # a lone surrogate (`"\ud800"`) cannot be stored
    return value


def header_problem(value: str) -> str | None:
    """Why `value` cannot be stored and sent back in a header (control characters, non-Latin-1), or None."""
    if CONTROL_CHARS.search(value.replace("\t", " ")):
        return "it contains control characters (CR, LF, NUL, ...)"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "it contains characters outside ISO-8859-1"
    return None


def media_type_problem(value: str) -> str | None:
    """Why `value` is not a media type (`type/subtype[; name=value]`, RFC 9110 §8.3.1), or None."""
    if len(value) > 255 or not _MEDIA_TYPE.fullmatch(value):
        return "it is not a media type such as 'image/png'"
    return None


def host_problem(host: str) -> str | None:
    """Why `host` (a URL's host, without brackets or port) is not a DNS name or an IP address, or None."""
    if not host:
        return "it has no host"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return "its host is not a valid name"
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return "its host is not a valid name"
    return None


def url_problem(url: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Why `url` is not an absolute URL with one of `schemes`, a valid host and port, and no control
    characters or spaces, or None when it is one."""
    if len(url) > MAX_URL_CHARS:
        return f"it is longer than {MAX_URL_CHARS} characters"
    if CONTROL_CHARS.search(url) or " " in url:
        return "it contains control characters or spaces"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in 0-65535
        host = parts.hostname
    except ValueError as exc:
        return f"it cannot be parsed ({exc})"
    if parts.scheme not in schemes:
        return f"its scheme should be {' or '.join(repr(scheme) for scheme in schemes)}"
    if port == 0:
        return "its port is 0"
    return host_problem(host or "")


def authority_problem(authority: str) -> str | None:
    """Why a `Host` header value (`host[:port]`) is not a valid authority, or None."""
    if any(char in authority for char in "/?#@\\"):
        return "it is not host[:port]"
    return url_problem(f"http://{authority}/")
