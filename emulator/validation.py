"""Input validation: JSON Schema (the jsonschema library) -> fal's 422 `detail` list.

fal's model servers are FastAPI/pydantic apps, so a bad input answers
`422 {"detail": [{"loc": ["body", "aspect_ratio"], "msg": "Input should be '16:9' or '9:16'",
"type": "literal_error", "url": ..., "ctx": {...}, "input": ...}]}`. The `type` names below are
pydantic v2's. Sources: https://fal.ai/docs/documentation/model-apis/errors.md; fal's
`fal/api/api.py` (RequestValidationError -> 422 + `x-fal-billable-units: 0`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from fal_emulator.errors import JSON, error_item, request_validation_error

TYPE_ERRORS = {
    "string": ("string_type", "Input should be a valid string"),
    "integer": ("int_type", "Input should be a valid integer"),
    "number": ("float_type", "Input should be a valid number"),
    "boolean": ("bool_type", "Input should be a valid boolean"),
    "array": ("list_type", "Input should be a valid list"),
    "object": ("dict_type", "Input should be a valid dictionary"),
    "null": ("none_required", "Input should be None"),
}
ROOT_OBJECT_ERROR = ("model_attributes_type", "Input should be a valid dictionary or object to extract fields from")

CONSTRAINT_ERRORS: dict[str, Callable[[Any], tuple[str, str, JSON]]] = {
    "minItems": lambda v: ("too_short", f"List should have at least {v} item{'s' * (v != 1)}", {"min_length": v}),
    "maxItems": lambda v: ("too_long", f"List should have at most {v} item{'s' * (v != 1)}", {"max_length": v}),
    "minLength": lambda v: ("string_too_short", f"String should have at least {v} characters", {"min_length": v}),
    "maxLength": lambda v: ("string_too_long", f"String should have at most {v} characters", {"max_length": v}),
    "minimum": lambda v: ("greater_than_equal", f"Input should be greater than or equal to {v}", {"ge": v}),
    "maximum": lambda v: ("less_than_equal", f"Input should be less than or equal to {v}", {"le": v}),
    "exclusiveMinimum": lambda v: ("greater_than", f"Input should be greater than {v}", {"gt": v}),
    "exclusiveMaximum": lambda v: ("less_than", f"Input should be less than {v}", {"lt": v}),
}


def _expected(values: list[Any]) -> str:
    quoted = [repr(value) if isinstance(value, str) else json.dumps(value) for value in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _items(error: ValidationError) -> list[JSON]:
    loc: list[str | int] = ["body", *error.absolute_path]
    kind, instance = error.validator, error.instance
    value: Any = error.validator_value
    if kind == "required":
        missing = [name for name in value if isinstance(instance, dict) and name not in instance]
        return [error_item([*loc, name], "Field required", "missing") for name in missing]
    if kind == "type":
        expected = value if isinstance(value, str) else value[0]
        type_, msg = ROOT_OBJECT_ERROR if expected == "object" and len(loc) == 1 else TYPE_ERRORS[expected]
        return [error_item(loc, msg, type_, input_=instance)]
    if kind == "enum":
        expected = _expected(list(value))
        msg = f"Input should be {expected}"
        return [error_item(loc, msg, "literal_error", input_=instance, ctx={"expected": expected})]
    if kind in CONSTRAINT_ERRORS:
        type_, msg, ctx = CONSTRAINT_ERRORS[str(kind)](value)
        return [error_item(loc, msg, type_, input_=instance, ctx=ctx)]
    return [error_item(loc, error.message, "value_error", input_=instance)]


class InputValidator:
    """Validates inputs of one endpoint against its input schema."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._validator = Draft202012Validator(schema)
        self._order = {name: index for index, name in enumerate(schema.get("properties", {}))}

    def _position(self, item: JSON) -> tuple[int, str]:
        """Sort key: the field's place in the schema (pydantic reports fields in declaration order)."""
        loc = item["loc"]
        field = loc[1] if len(loc) > 1 else ""
        return self._order.get(str(field), len(self._order)), json.dumps(loc[2:])

    def errors(self, instance: Any) -> list[JSON]:
        """fal `detail` items for every problem in `instance` (empty when it is valid), in schema order."""
        items: list[JSON] = []
        for error in self._validator.iter_errors(instance):
            # jsonschema reports `required` once per missing field, each naming all of them: keep one of each.
            items.extend(item for item in _items(error) if item not in items)
        # A value outside an enum is one `literal_error` (as pydantic says it), not also a type error.
        literal_locs = [item["loc"] for item in items if item["type"] == "literal_error"]
        items = [item for item in items if item["type"] == "literal_error" or item["loc"] not in literal_locs]
        return sorted(items, key=self._position)

    def validate(self, instance: Any) -> None:
        """Raises ModelError (422) listing every problem in `instance`."""
        items = self.errors(instance)
        if items:
            raise request_validation_error(items)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def parse_json_body(raw: bytes) -> Any:
    """Decode a request body as JSON the way FastAPI does. Raises ModelError (422) when it is not JSON.

    An empty body is `missing`; anything else that is not strict JSON (malformed text, `NaN`, numbers
    out of range, lone surrogates, nesting too deep for the parser) is `json_invalid`.
    """
    if not raw.strip():
        raise request_validation_error([error_item(["body"], "Field required", "missing")])
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # lone surrogates cannot be UTF-8
        return value
    except json.JSONDecodeError as exc:
        position, reason = exc.pos, exc.msg
    except UnicodeError as exc:
        position, reason = getattr(exc, "start", 0), str(getattr(exc, "reason", exc))
    except (ValueError, RecursionError) as exc:
        position, reason = 0, str(exc) if isinstance(exc, ValueError) else "nesting too deep"
    raise request_validation_error(
        [error_item(["body", position], "JSON decode error", "json_invalid", input_={}, ctx={"error": reason})]
    )
