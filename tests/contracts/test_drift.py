"""`fal-emulator contracts diff --openapi FILE_OR_URL`: our documents against fal's published per-endpoint OpenAPI.

fal's document is made here from our own (as a file on disk, no network), in fal's pydantic style and with the
kinds of drift fal's catalogue shows: enums changed, a default changed, a field added, one made nullable,
one made required."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fal_emulator.catalog import load_catalog
from fal_emulator.contracts import cli

ENDPOINT = "fal-ai/veo3/image-to-video"


def _ours() -> dict[str, Any]:
    endpoint = load_catalog().get(ENDPOINT)
    assert endpoint is not None
    return copy.deepcopy(dict(endpoint.document))


def _write(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "fal-openapi.json"
    path.write_text(json.dumps(document))
    return str(path)


def _drifted() -> dict[str, Any]:
    document = _ours()
    schemas = document["components"]["schemas"]
    name = next(key for key in schemas if key.endswith("Input"))
    properties = schemas[name]["properties"]
    properties["duration"]["enum"] = ["8s"]  # fal's seed page lists only 8 s
    properties["aspect_ratio"]["default"] = "16:9"
    properties["enhance_prompt"] = {"anyOf": [{"type": "boolean"}, {"type": "null"}], "title": "Enhance Prompt"}
    audio = properties["generate_audio"]
    properties["generate_audio"] = {"anyOf": [{"type": "boolean"}, {"type": "null"}], "default": audio["default"]}
    properties["resolution"]["enum"] = [*properties["resolution"]["enum"], "4k"]
    schemas[name]["required"] = [*schemas[name]["required"], "aspect_ratio"]
    return document


def test_our_own_document_has_no_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(tmp_path, _ours())
    assert cli.main(["diff", "--openapi", source]) == 0
    assert capsys.readouterr().out.strip() == f"{ENDPOINT}: no drift from {source}"


def test_the_drift_is_printed_field_by_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(tmp_path, _drifted())
    assert cli.main(["diff", "--openapi", source]) == 1
    out = capsys.readouterr().out
    lines = {tuple(line.split()[:2]): line for line in out.splitlines()[1:]}
    assert out.splitlines()[0] == f"{ENDPOINT}: {len(lines)} difference(s) from {source}"
    assert '["4s", "6s", "8s"]' in lines[("input.duration", "enum")] and '["8s"]' in lines[("input.duration", "enum")]
    assert lines[("input.aspect_ratio", "default")].endswith('fal\'s: "16:9"')
    assert lines[("input.aspect_ratio", "required")].endswith("fal's: true")
    assert '"4k"' in lines[("input.resolution", "enum")]
    assert lines[("input.enhance_prompt", "field")].endswith("fal's: present")
    assert lines[("input.generate_audio", "nullable")].endswith("fal's: true")  # pydantic's anyOf [T, null]
    assert ("input.generate_audio", "type") not in lines


def test_an_unreadable_document_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["diff", "--openapi", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    not_fal = _write(tmp_path, {"openapi": "3.0.4", "paths": {}})
    assert cli.main(["diff", "--openapi", not_fal]) == 2
    assert "not a fal queue OpenAPI document" in capsys.readouterr().err
