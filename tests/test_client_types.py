"""The input schemas in `openapi/` against a second real source: the TypeScript types @fal-ai/client 1.10.1 ships
for every Veo endpoint (`src/types/endpoints.d.ts`).

`tests/js/client_types.mjs` turns those types into JSON Schema with ts-json-schema-generator (the TypeScript
compiler reads them; nothing here parses TypeScript). Each document is compared with its endpoint's type: the
fields, their types, enums, defaults (the types carry them as "Default value: `...`" in each field's doc
comment) and list lengths, and the required fields. Every difference that stays is listed in `KNOWN`, with the
DIVERGENCES.md row that says why; any other difference fails.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fal_emulator.catalog import load_catalog
from tests.test_js_client import JS_DIR, NODE, NODE_MAJOR, NPM, node_modules  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.skipif(NODE is None or NPM is None, reason="reading the client's types needs node and npm on PATH"),
    pytest.mark.skipif(
        NODE_MAJOR is not None and NODE_MAJOR < 20,
        reason=f"reading the client's types needs node >= 20, not {NODE_MAJOR}",
    ),
]

CATALOG = load_catalog()
DEFAULT_NOTE = re.compile(r"Default value: `(.*?)`")
NULL = {"type": "null"}

R3 = "#33 (extend-video, lite first-last-frame and reference-to-video: a finite set of clips)"
R4K = "#33a (4k on Veo 3.1: fal's model pages and prices list it; the client's Veo 3.1 types are Veo 3's)"
RSEED = "#33b (a seed page's own fields stand)"
# (endpoint id, field, aspect) -> the DIVERGENCES.md row that says why the difference stays.
KNOWN: dict[tuple[str, str, str], str] = {
    ("fal-ai/veo2/image-to-video", "aspect_ratio", "only in openapi"): RSEED,
    ("fal-ai/veo3.1/fast/image-to-video", "aspect_ratio", "enum"): RSEED,
    ("fal-ai/veo3.1/reference-to-video", "negative_prompt", "only in openapi"): RSEED,
    ("fal-ai/veo3.1/reference-to-video", "seed", "only in openapi"): RSEED,
    ("fal-ai/veo3.1/reference-to-video", "resolution", "enum"): RSEED,
    ("fal-ai/veo3.1/reference-to-video", "duration", "enum"): R3,
    ("fal-ai/veo3.1/extend-video", "duration", "enum"): R3,
    ("fal-ai/veo3.1/extend-video", "resolution", "enum"): R3,
    ("fal-ai/veo3.1/fast/extend-video", "duration", "enum"): R3,
    ("fal-ai/veo3.1/fast/extend-video", "resolution", "enum"): R3,
    ("fal-ai/veo3.1/lite/first-last-frame-to-video", "duration", "enum"): R3,
    ("fal-ai/veo3.1", "resolution", "enum"): R4K,
    ("fal-ai/veo3.1/fast", "resolution", "enum"): R4K,
    ("fal-ai/veo3.1/image-to-video", "resolution", "enum"): R4K,
}


@pytest.fixture(scope="module")
def client_types(node_modules: Path) -> dict[str, Any]:  # noqa: F811 - pytest injects the imported fixture
    """{"version": ..., "inputs": {endpoint id: JSON Schema of its input type, or None}}."""
    assert NODE is not None
    ids = [endpoint.endpoint_id for endpoint in CATALOG]
    done = subprocess.run(
        [NODE, "client_types.mjs", *ids], cwd=JS_DIR, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def _ours(prop: dict[str, Any]) -> dict[str, Any]:
    """A field of an openapi/ document, normalised: its JSON type (`number` for `integer`, as TypeScript has only
    `number`; the non-null branch of fal's nullable `anyOf`), enum as a set, default, list bounds."""
    if "anyOf" in prop:
        (prop_type,) = (branch for branch in prop["anyOf"] if branch != NULL)
        prop = {**prop, **prop_type}
    kind = "number" if prop.get("type") == "integer" else prop.get("type")
    return {
        "type": kind,
        "enum": frozenset(prop["enum"]) if "enum" in prop else None,
        "default": prop.get("default"),
        "min_items": prop.get("minItems"),
        "max_items": prop.get("maxItems"),
    }


def _is_blob_or_file(branch: dict[str, Any]) -> bool:
    """The DOM's `Blob` ({size, type}) or fal's `File` ({url, ...}), as the generator inlines them."""
    properties = set(branch.get("properties", {}))
    return branch.get("type") == "object" and ({"size", "type"} <= properties or "url" in properties)


def _theirs(prop: dict[str, Any]) -> dict[str, Any]:
    """A field of the client's type, normalised the same way. A file field is `string | Blob | File` (the client
    uploads a Blob or File and sends its URL): a string. The default is the doc comment's "Default value"."""
    kind = prop.get("type")
    if "anyOf" in prop and {"type": "string"} in prop["anyOf"]:
        others = [branch for branch in prop["anyOf"] if branch != {"type": "string"}]
        assert all(_is_blob_or_file(branch) for branch in others), prop
        kind = "string"
    note = DEFAULT_NOTE.search(prop.get("description", ""))
    return {
        "type": kind,
        "enum": frozenset(prop["enum"]) if "enum" in prop else None,
        "default": json.loads(note.group(1)) if note else None,
        "min_items": prop.get("minItems"),
        "max_items": prop.get("maxItems"),
    }


def _same_default(ours: Any, theirs: Any) -> bool:
    # The generator of the client's types never writes a `false` or `0` default (none of the 4,808 "Default
    # value" notes in endpoints.d.ts is one), so a field without a note may well default to false.
    return ours == theirs or (theirs is None and ours in (False, 0) and not isinstance(ours, str))


def differences(schema: dict[str, Any], types: dict[str, Any], endpoint_id: str) -> set[tuple[str, str, str]]:
    ours, theirs = schema["properties"], types["properties"]
    found = {(endpoint_id, name, "only in openapi") for name in set(ours) - set(theirs)}
    found |= {(endpoint_id, name, "only in types") for name in set(theirs) - set(ours)}
    for name in set(ours) & set(theirs):
        mine, other = _ours(ours[name]), _theirs(theirs[name])
        for aspect in ("type", "enum", "min_items", "max_items"):
            if mine[aspect] != other[aspect]:
                found.add((endpoint_id, name, aspect))
        if not _same_default(mine["default"], other["default"]):
            found.add((endpoint_id, name, "default"))
    shared = set(ours) & set(theirs)
    if set(schema.get("required", [])) & shared != set(types.get("required", [])) & shared:
        found.add((endpoint_id, "*", "required"))
    return found


def test_the_types_come_from_the_pinned_client(client_types: dict[str, Any]) -> None:
    package = json.loads((JS_DIR / "package.json").read_text())
    assert client_types["version"] == package["dependencies"]["@fal-ai/client"] == "1.10.1"


def test_the_client_types_every_documented_endpoint(client_types: dict[str, Any]) -> None:
    missing = [endpoint_id for endpoint_id, schema in client_types["inputs"].items() if schema is None]
    assert missing == []


def test_the_documents_agree_with_the_client_types_but_for_the_known_differences(
    client_types: dict[str, Any],
) -> None:
    found: set[tuple[str, str, str]] = set()
    for endpoint in CATALOG:
        found |= differences(
            dict(endpoint.input_schema), client_types["inputs"][endpoint.endpoint_id], endpoint.endpoint_id
        )
    assert sorted(found - set(KNOWN)) == [], (
        "new differences: add each to KNOWN and DIVERGENCES.md, or fix the document"
    )
    assert sorted(set(KNOWN) - found) == [], "these differences are gone: drop them from KNOWN and DIVERGENCES.md"


def test_each_known_difference_names_a_divergences_row() -> None:
    divergences = (Path(__file__).resolve().parent.parent / "DIVERGENCES.md").read_text()
    for reason in set(KNOWN.values()):
        row = reason.split(" ", 1)[0].removeprefix("#")
        assert f"| {row} |" in divergences, reason


def test_the_comparison_sees_a_drift() -> None:
    """The comparison has teeth: a type that drops an enum value or adds a field is a difference."""
    schema = {"properties": {"a": {"type": "string", "enum": ["x", "y"], "default": "x"}}, "required": []}
    types = {"properties": {"a": {"type": "string", "enum": ["x"], "description": 'Default value: `"x"`'}}}
    assert differences(schema, types, "e") == {("e", "a", "enum")}
    types["properties"]["b"] = {"type": "number"}
    assert differences(schema, types, "e") == {("e", "a", "enum"), ("e", "b", "only in types")}
    assert (
        differences(
            {"properties": {"c": {"type": "boolean", "default": False}}},
            {"properties": {"c": {"type": "boolean"}}},
            "e",
        )
        == set()
    )
