"""Cassettes: recorded fal traffic as one HTTP Archive (HAR 1.2) file, with the output media beside it.

    writer = CassetteWriter(Path("veo.har"), upstream={"queue": "https://queue.fal.run"}, secrets=[key])
    writer.add(entry(kind="submit", method="POST", url=..., ...)); writer.save()   # validated, atomic
    log = load_cassette(Path("veo.har"))                                            # validated, or CassetteError

Why HAR 1.2: it is the standard archive of HTTP exchanges (browsers' devtools, WireMock's and MockServer's
importers, Playwright, Schemathesis read it), it has a version field (`log.version`), every entry carries its own
time (`startedDateTime`, `time`, `timings`) so status polls keep their offsets, and the spec allows custom fields
(`_name`) for what it has no place for: `entry._fal` (the kind of exchange, the request id, the offset in seconds
since that request's submit, a status stream's events) and `log._fal` (the format version of those fields, the
upstream hosts, the spend, and the media files). vcrpy's format (`{version: 1, interactions: [...]}`) has no
timing per interaction, and its readers are Python-only.

Media are stored beside the cassette (`veo.har` -> `veo.media/<sha256>.<ext>`), keyed by their SHA-256, and
referenced from `log._fal.media`; a HAR entry never holds video bytes.

Nothing secret is written: `Authorization`, cookies and token-like headers are replaced by `[REDACTED]`, signed
URL query values (`X-Goog-Signature`, `token`, …) too, token fields of JSON bodies too, and as a last net every
string passed as `secrets` (the user's fal key) is replaced wherever it appears before the file is written.
Reading goes through the JSON Schema in `har.schema.json` (jsonschema), never an ad-hoc parser.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jsonschema import Draft7Validator, FormatChecker

from fal_emulator import __version__

SCHEMA_FILE = Path(__file__).resolve().with_name("har.schema.json")
FORMAT = 1  # log._fal.format
REDACTED = "[REDACTED]"
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-fal-key", "x-api-key", "x-goog-api-key"}
)
SECRET_FIELDS = frozenset({"token", "access_token", "refresh_token", "secret", "api_key", "key", "password"})
SECRET_QUERY_PARTS = ("signature", "token", "credential", "key", "sig", "secret", "auth", "expires", "policy")
JSON = dict[str, Any]


class CassetteError(ValueError):
    """A cassette that cannot be read: not JSON, or not HAR 1.2 with fal-emulator's `_fal` fields."""


@lru_cache(maxsize=1)
def _validator() -> Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return Draft7Validator(schema, format_checker=FormatChecker())


def validate(log: Mapping[str, Any], source: str = "cassette") -> None:
    """Raise CassetteError naming the first place where `log` (a whole HAR document) breaks the schema."""
    errors = sorted(_validator().iter_errors(log), key=lambda error: list(error.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.absolute_path) or "(top)"
        raise CassetteError(f"{source} is not a fal-emulator HAR 1.2 cassette: at {where}: {first.message}")


def load_cassette(path: Path) -> JSON:
    """The whole HAR document at `path`, validated. Raises CassetteError (unreadable, not JSON, not a cassette)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CassetteError(f"cannot read cassette {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CassetteError(f"cassette {path} is not JSON: {exc}") from None
    validate(document, str(path))
    return dict(document)


def media_dir(cassette: Path) -> Path:
    """Where a cassette's media live: `veo.har` -> `veo.media/`."""
    return cassette.with_name(cassette.stem + ".media")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def redact_url(url: str) -> str:
    """`url` with the values of signature, token and credential query parameters replaced by `[REDACTED]`."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (name, REDACTED if any(word in name.lower() for word in SECRET_QUERY_PARTS) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]")))


def redact_json(value: Any) -> Any:
    """A copy of a JSON value with token-like fields and signed URLs redacted."""
    if isinstance(value, dict):
        return {
            key: REDACTED if key.lower() in SECRET_FIELDS and isinstance(item, str) else redact_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return redact_url(value)
    return value


def har_headers(headers: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """Headers as HAR name/value pairs, secrets redacted."""
    return [{"name": name, "value": REDACTED if name.lower() in SECRET_HEADERS else value} for name, value in headers]


def body_text(content: bytes, content_type: str) -> str | None:
    """A body as HAR `text` when it is JSON or text (JSON bodies redacted), else None."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return json.dumps(redact_json(json.loads(content)), ensure_ascii=False)
        except ValueError:
            return content.decode("utf-8", errors="replace")
    if kind.startswith("text/"):
        return content.decode("utf-8", errors="replace")
    return None


def entry(
    *,
    kind: str,
    method: str,
    url: str,
    request_headers: Sequence[tuple[str, str]],
    request_body: bytes,
    status: int,
    status_text: str,
    response_headers: Sequence[tuple[str, str]],
    response_body: bytes,
    started: str,
    seconds: float,
    fal: Mapping[str, Any] | None = None,
) -> JSON:
    """One HAR entry (request, response, timings) plus its `_fal` fields; secrets redacted."""
    url = redact_url(url)
    request_type = dict((k.lower(), v) for k, v in request_headers).get("content-type", "application/octet-stream")
    response_type = dict((k.lower(), v) for k, v in response_headers).get("content-type", "")
    request: JSON = {
        "method": method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": har_headers(request_headers),
        "queryString": [{"name": n, "value": v} for n, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)],
        "headersSize": -1,
        "bodySize": len(request_body),
    }
    if request_body:
        text = body_text(request_body, request_type)
        request["postData"] = {"mimeType": request_type, **({"text": text} if text is not None else {})}
    content: JSON = {"size": len(response_body), "mimeType": response_type}
    text = body_text(response_body, response_type)
    if text is not None:
        content["text"] = text
    milliseconds = round(seconds * 1000, 3)
    return {
        "startedDateTime": started,
        "time": milliseconds,
        "request": request,
        "response": {
            "status": status,
            "statusText": status_text,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": har_headers(response_headers),
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(response_body),
        },
        "cache": {},
        "timings": {"send": 0, "wait": milliseconds, "receive": 0},
        "_fal": {"kind": kind, **(fal or {})},
    }


class CassetteWriter:
    """Builds a cassette and rewrites it whole after each exchange (validated, then an atomic rename), so a
    recording that stops at any moment leaves a readable file. An existing cassette at `path` is continued: its
    entries and media are kept (raises CassetteError if it is not a cassette)."""

    def __init__(
        self, path: Path, *, upstream: Mapping[str, str], secrets: Sequence[str] = (), budget_usd: float | None = None
    ) -> None:
        self.path = path
        self.media_dir = media_dir(path)
        # JSON-escaped, as they would appear in the text; very short strings are left alone (they would match
        # ordinary words), and the headers that carry keys are redacted anyway.
        self._secrets = [json.dumps(secret)[1:-1] for secret in secrets if len(secret) >= 8]
        fal: JSON = {"format": FORMAT, "upstream": dict(upstream), "media": []}
        if budget_usd is not None:
            fal.update(budget_usd=budget_usd, spent_usd=0.0)
        self.document: JSON = {
            "log": {"version": "1.2", "creator": {"name": "fal-emulator", "version": __version__}, "entries": [],
                    "_fal": fal}
        }  # fmt: skip
        self._media_by_url: dict[str, JSON] = {}
        if path.exists():  # record into an existing cassette: its entries and media stay, new ones follow
            self.document = load_cassette(path)
            self.log["_fal"].update({"upstream": dict(upstream), **({"budget_usd": budget_usd} if budget_usd else {})})
            self._media_by_url = {item["url"]: item for item in self.log["_fal"]["media"]}

    @property
    def log(self) -> JSON:
        log: JSON = self.document["log"]
        return log

    def add(self, har_entry: JSON) -> None:
        self.log["entries"].append(har_entry)
        self.save()

    def spent(self, usd: float) -> None:
        self.log["_fal"]["spent_usd"] = round(usd, 4)

    def media_for(self, url: str) -> JSON | None:
        """The stored media of `url` (as upstream gave it), if it was fetched already."""
        return self._media_by_url.get(url)

    def add_media(self, url: str, content: bytes, content_type: str, file_name: str = "") -> JSON:
        """Store `content` beside the cassette under its SHA-256 (once) and reference it; returns the reference."""
        digest = hashlib.sha256(content).hexdigest()
        suffix = Path(file_name).suffix or mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
        relative = f"{self.media_dir.name}/{digest}{suffix}"
        target = self.path.parent / relative
        if not target.exists():
            self.media_dir.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(target.suffix + ".partial")
            partial.write_bytes(content)
            os.replace(partial, target)
        reference = {"url": redact_url(url), "sha256": digest, "file": relative, "size": len(content),
                     "content_type": content_type}  # fmt: skip
        if all(item["sha256"] != digest or item["url"] != reference["url"] for item in self.log["_fal"]["media"]):
            self.log["_fal"]["media"].append(reference)
        self._media_by_url[url] = reference
        self.save()
        return reference

    def save(self) -> None:
        """Validate and write the cassette (a temporary file renamed over it). Raises CassetteError if the document
        is not a valid cassette (a bug), OSError if it cannot be written."""
        validate(self.document, str(self.path))
        text = json.dumps(self.document, indent=1, ensure_ascii=False)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(text + "\n", encoding="utf-8")
        os.replace(partial, self.path)
