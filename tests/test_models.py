"""JSON Schema -> pydantic models: each construct the documents use (or may use) becomes the pydantic type a
fal app would declare, so pydantic's own errors and coercions follow."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from fal_emulator.catalog import load_catalog
from fal_emulator.models import SchemaError, model_from_schema
from fal_emulator.validation import InputValidator

SCHEMA: dict[str, Any] = {
    "title": "Sample",
    "type": "object",
    "properties": {
        "prompt": {"type": "string", "minLength": 1, "maxLength": 5},
        "image_urls": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
        "seed": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "steps": {"type": "integer", "minimum": 1, "exclusiveMaximum": 50, "multipleOf": 2, "default": 10},
        "scale": {"type": "number", "exclusiveMinimum": 0, "maximum": 1.5},
        "mode": {"enum": ["a", "b"], "default": "a"},
        "level": {"enum": [1, 2]},
        "loras": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}}}},
        "extra": {"type": "object"},
        "model_name": {"type": "string", "default": "x"},
        "json": {"type": "boolean", "default": False},
        "class": {"type": "string", "pattern": "^[a-z]+$"},
    },
    "required": ["prompt", "image_urls"],
}
VALID: dict[str, Any] = {"prompt": "cat", "image_urls": ["https://x/a.png"]}


def errors(body: Any) -> list[tuple[list[Any], str, Any]]:
    return [(item["loc"], item["type"], item.get("ctx")) for item in InputValidator(SCHEMA).errors(body)]


def test_defaults_fill_in_and_optional_fields_without_one_are_none() -> None:
    values = InputValidator(SCHEMA).validate(VALID)
    assert values == {
        **VALID,
        "seed": None,
        "steps": 10,
        "scale": None,
        "mode": "a",
        "level": None,
        "loras": None,
        "extra": None,
        "model_name": "x",
        "json": False,
        "class": None,
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"image_urls": []},
            (["body", "image_urls"], "too_short", {"field_type": "List", "min_length": 1, "actual_length": 0}),
        ),
        (
            {"image_urls": ["a", "b", "c", "d"]},
            (["body", "image_urls"], "too_long", {"field_type": "List", "max_length": 3, "actual_length": 4}),
        ),
        ({"prompt": ""}, (["body", "prompt"], "string_too_short", {"min_length": 1})),
        ({"prompt": "toolong"}, (["body", "prompt"], "string_too_long", {"max_length": 5})),
        ({"steps": 0}, (["body", "steps"], "greater_than_equal", {"ge": 1})),
        ({"steps": 50}, (["body", "steps"], "less_than", {"lt": 50})),
        ({"steps": 3}, (["body", "steps"], "multiple_of", {"multiple_of": 2})),
        ({"scale": 0}, (["body", "scale"], "greater_than", {"gt": 0})),
        ({"scale": 2}, (["body", "scale"], "less_than_equal", {"le": 1.5})),
        ({"mode": "c"}, (["body", "mode"], "literal_error", {"expected": "'a' or 'b'"})),
        ({"level": 3}, (["body", "level"], "literal_error", {"expected": "1 or 2"})),
        ({"loras": [{"path": 1}]}, (["body", "loras", 0, "path"], "string_type", None)),
        ({"extra": []}, (["body", "extra"], "dict_type", None)),
        ({"class": "A1"}, (["body", "class"], "string_pattern_mismatch", {"pattern": "^[a-z]+$"})),
        ({"json": "maybe"}, (["body", "json"], "bool_parsing", None)),
    ],
)
def test_each_constraint_is_pydantics(change: dict[str, Any], expected: tuple[Any, ...]) -> None:
    assert errors({**VALID, **change}) == [expected]


def test_a_json_name_that_is_no_python_field_name_keeps_its_name_in_loc_and_values() -> None:
    """`class`, `json` and `model_*` cannot be model attributes as they are: they become aliases, invisibly."""
    values = InputValidator(SCHEMA).validate({**VALID, "class": "abc", "json": "true", "model_name": "y"})
    assert (values["class"], values["json"], values["model_name"]) == ("abc", True, "y")


def test_nullable_fields_take_null_and_other_fields_do_not() -> None:
    assert errors({**VALID, "seed": None}) == []
    assert errors({**VALID, "steps": None}) == [(["body", "steps"], "int_type", None)]


def test_an_unreadable_schema_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="Sample_when"):
        model_from_schema({"title": "Sample", "properties": {"when": {"type": "date-ish"}}})


@pytest.mark.parametrize("endpoint", list(load_catalog()), ids=lambda endpoint: endpoint.endpoint_id)
def test_every_endpoint_model_has_the_documents_fields_in_order(endpoint: Any) -> None:
    model = InputValidator(endpoint.input_schema).model
    assert [field.alias or name for name, field in model.model_fields.items()] == list(endpoint.properties)
    required = {field.alias or name for name, field in model.model_fields.items() if field.is_required()}
    assert required == set(endpoint.input_schema["required"])
    with pytest.raises(ValidationError):
        model.model_validate({})
