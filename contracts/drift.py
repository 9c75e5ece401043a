"""`fal-emulator contracts diff --openapi FILE_OR_URL`: how our `openapi/` document of an endpoint differs from the
one fal publishes for it (`https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=<id>`, fal-protocol.md §7.1).

    theirs = load_document("fal-veo3-i2v.json")          # a file (JSON or YAML) or an http(s) URL
    drift = compare(ours_endpoint, theirs)               # [Drift("input.duration", "enum", ["4s", ...], ["8s"]), ...]
    print(render(ours_endpoint.endpoint_id, "fal-veo3-i2v.json", drift))

Both documents' input and output schemas are compared field by field (dotted paths: `input.aspect_ratio`,
`output.video.file_size`): a field only one side has, its type, `nullable` (fal's pydantic `anyOf [T, null]`),
`enum` values, `default`, whether it is `required`, and its bounds (`minimum`, `maximum`, `exclusiveMinimum`,
`exclusiveMaximum`, `minLength`, `maxLength`, `minItems`, `maxItems`). Known, deliberate differences are listed in
DIVERGENCES.md; this command shows every difference, so a new one stands out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from fal_emulator.catalog import CatalogError, Endpoint, endpoint_from_document

BOUNDS = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
)  # fmt: skip
ABSENT = "(absent)"


class DriftSourceError(ValueError):
    """A document that cannot be read or is not a fal per-endpoint OpenAPI document."""


@dataclass(frozen=True)
class Drift:
    """One difference: at `where` (`input.duration`), the `aspect` (`enum`, `default`, …) is `ours` here and
    `theirs` in fal's document (`(absent)` when a side does not have it)."""

    where: str
    aspect: str
    ours: Any
    theirs: Any

    def render(self) -> str:
        return f"  {self.where:<34} {self.aspect:<17} ours: {_show(self.ours):<34} fal's: {_show(self.theirs)}"


def load_document(source: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """fal's document from a file (JSON or YAML) or an http(s) URL. Raises DriftSourceError."""
    try:
        if source.startswith(("http://", "https://")):
            answer = httpx.get(source, timeout=timeout, follow_redirects=True)
            answer.raise_for_status()
            text = answer.text
        else:
            text = Path(source).expanduser().read_text(encoding="utf-8")
        document = yaml.safe_load(text)
    except (OSError, httpx.HTTPError, yaml.YAMLError) as exc:
        raise DriftSourceError(f"cannot read {source}: {exc}") from None
    if not isinstance(document, dict):
        raise DriftSourceError(f"{source} is not an OpenAPI document")
    return document


def their_endpoint(document: Mapping[str, Any], source: str) -> Endpoint:
    """fal's document as an Endpoint (input and output schemas resolved). Raises DriftSourceError."""
    try:
        return endpoint_from_document(document)
    except CatalogError as exc:
        raise DriftSourceError(f"{source}: {exc}") from None


def _nullable(schema: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """A schema without fal's pydantic `anyOf [T, {type: null}]` or OpenAPI's `nullable`, and whether it had it."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [option for option in options if not (isinstance(option, dict) and option.get("type") == "null")]
        if len(kept) < len(options) and len(kept) == 1 and isinstance(kept[0], dict):
            merged = {**{k: v for k, v in schema.items() if k != "anyOf"}, **kept[0]}
            return merged, True
    return schema, bool(schema.get("nullable"))


def _type(schema: Mapping[str, Any]) -> Any:
    if "type" in schema:
        return schema["type"]
    if isinstance(schema.get("anyOf"), list):
        return sorted(str(_type(option)) for option in schema["anyOf"] if isinstance(option, dict))
    return ABSENT


def _compare_schema(where: str, ours: Mapping[str, Any], theirs: Mapping[str, Any], found: list[Drift]) -> None:
    ours, our_null = _nullable(ours)
    theirs, their_null = _nullable(theirs)
    if _type(ours) != _type(theirs):
        found.append(Drift(where, "type", _type(ours), _type(theirs)))
    if our_null != their_null:
        found.append(Drift(where, "nullable", our_null, their_null))
    if ours.get("enum") != theirs.get("enum") and ("enum" in ours or "enum" in theirs):
        found.append(Drift(where, "enum", ours.get("enum", ABSENT), theirs.get("enum", ABSENT)))
    if ours.get("default", ABSENT) != theirs.get("default", ABSENT):
        found.append(Drift(where, "default", ours.get("default", ABSENT), theirs.get("default", ABSENT)))
    for bound in BOUNDS:
        if ours.get(bound, ABSENT) != theirs.get(bound, ABSENT):
            found.append(Drift(where, bound, ours.get(bound, ABSENT), theirs.get(bound, ABSENT)))
    if "properties" in ours or "properties" in theirs:
        _compare_object(where, ours, theirs, found)
    items_ours, items_theirs = ours.get("items"), theirs.get("items")
    if isinstance(items_ours, dict) and isinstance(items_theirs, dict):
        _compare_schema(f"{where}[]", items_ours, items_theirs, found)


def _compare_object(where: str, ours: Mapping[str, Any], theirs: Mapping[str, Any], found: list[Drift]) -> None:
    our_props: Mapping[str, Any] = ours.get("properties", {})
    their_props: Mapping[str, Any] = theirs.get("properties", {})
    our_required, their_required = set(ours.get("required", [])), set(theirs.get("required", []))
    for name in sorted(set(our_props) | set(their_props)):
        path = f"{where}.{name}"
        if name not in their_props:
            found.append(Drift(path, "field", "present", ABSENT))
            continue
        if name not in our_props:
            found.append(Drift(path, "field", ABSENT, "present"))
            continue
        if (name in our_required) != (name in their_required):
            found.append(Drift(path, "required", name in our_required, name in their_required))
        _compare_schema(path, our_props[name], their_props[name], found)


def compare(ours: Endpoint, theirs: Endpoint) -> list[Drift]:
    """Every difference between our endpoint's input and output schemas and fal's."""
    found: list[Drift] = []
    _compare_schema("input", ours.input_schema, theirs.input_schema, found)
    _compare_schema("output", ours.output_schema, theirs.output_schema, found)
    return found


def render(endpoint_id: str, source: str, drift: list[Drift]) -> str:
    """The drift of one endpoint as text: a heading, then one line per difference."""
    if not drift:
        return f"{endpoint_id}: no drift from {source}"
    lines = [f"{endpoint_id}: {len(drift)} difference(s) from {source}"]
    lines += [item.render() for item in drift]
    return "\n".join(lines)


def _show(value: Any) -> str:
    text = value if isinstance(value, str) and value in {ABSENT, "present"} else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"
