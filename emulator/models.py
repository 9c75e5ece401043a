"""pydantic v2 models built from the input schemas in `openapi/`: how a fal runner sees its input.

A fal app is FastAPI + pydantic: its endpoint takes one pydantic model as the request body, and FastAPI
validates the JSON body against it in pydantic's default ("lax") mode before the app's code runs. So
`"true"` is a boolean, `"42"` an integer, `null` is fine for a nullable field, and unknown fields are
ignored. This module builds such a model for each endpoint from its JSON Schema (the only place a model is
defined) with `pydantic.create_model`:

| JSON Schema                                   | pydantic field                                 |
|-----------------------------------------------|------------------------------------------------|
| `type: string` / `integer` / `number` / `boolean` / `null` | `str` / `int` / `float` / `bool` / `None` |
| `enum: [a, b]`                                | `Literal[a, b]`                                |
| `type: array`, `items`, `minItems`, `maxItems` | `list[item]` with `min_length` / `max_length` |
| `type: object` with `properties`              | a nested model; without: `dict[str, Any]`      |
| `anyOf` / `oneOf` (`[{type: integer}, {type: "null"}]`) | a union (`int | None`)              |
| `minLength`, `maxLength`, `pattern`           | `min_length`, `max_length`, `pattern`          |
| `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf` | `ge`, `le`, `gt`, `lt`, `multiple_of` |
| `default`; a field neither required nor defaulted | that default; `None`                       |

Sources: fal's app framework (github fal-ai/fal `projects/fal/src/fal/api/api.py`: the endpoint's body is a
pydantic model and a `RequestValidationError` answers 422); FastAPI 0.136 `fastapi/_compat/v2.py`
(`ModelField.validate`: `validate_python(value, from_attributes=True)`, errors taken with
`include_url=False` and their `loc` prefixed by `"body"`).
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

JSON = dict[str, Any]
SCALARS: Mapping[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None)}
# JSON Schema keyword -> pydantic `Field` argument.
CONSTRAINTS = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_length",
    "maxItems": "max_length",
    "pattern": "pattern",
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "multipleOf": "multiple_of",
}
MODEL_CONFIG = ConfigDict(protected_namespaces=(), extra="ignore")


class SchemaError(ValueError):
    """A JSON Schema construct this module cannot turn into a pydantic type (names the schema)."""


def _constrained(annotation: Any, schema: Mapping[str, Any]) -> Any:
    limits = {CONSTRAINTS[key]: value for key, value in schema.items() if key in CONSTRAINTS}
    return Annotated[annotation, Field(**limits)] if limits else annotation


def _union(members: list[Any]) -> Any:
    unique = list(dict.fromkeys(members))
    if len(unique) == 1:
        return unique[0]
    if type(None) in unique and len(unique) == 2:
        (other,) = (member for member in unique if member is not type(None))
        return Optional[other]  # noqa: UP045 - a runtime type object, not an annotation
    return Union[tuple(unique)]  # noqa: UP007 - built from a list at run time


def annotation_for(schema: Mapping[str, Any], name: str = "Model") -> Any:
    """The pydantic type of one JSON Schema (already free of `$ref`). Raises SchemaError for what it cannot read."""
    if "enum" in schema:
        return Literal[tuple(schema["enum"])]
    if "const" in schema:
        return Literal[schema["const"]]
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return _union([annotation_for(branch, name) for branch in schema[combinator]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([annotation_for({**schema, "type": each}, name) for each in kind])
    if isinstance(kind, str) and kind in SCALARS:
        return _constrained(SCALARS[kind], schema)
    if kind == "array":
        items = schema.get("items")
        item = annotation_for(items, f"{name}Item") if isinstance(items, Mapping) else Any
        return _constrained(list[item], schema)  # type: ignore[valid-type]
    if kind == "object" or "properties" in schema:
        if "properties" in schema:
            return model_from_schema(schema, name)
        return dict[str, Any]
    if kind is None and not schema:
        return Any
    raise SchemaError(f"{name}: cannot build a pydantic type for JSON Schema {dict(schema)!r}")


def _python_name(name: str, taken: set[str]) -> str:
    """`name` if it can be a model field as it is, else a safe stand-in (the JSON name becomes its alias)."""
    usable = name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
    if usable and not hasattr(BaseModel, name) and name not in taken:
        return name
    stand_in = f"field_{len(taken)}"
    while stand_in in taken:
        stand_in += "_"
    return stand_in


def model_from_schema(schema: Mapping[str, Any], name: str | None = None) -> type[BaseModel]:
    """A pydantic model (lax, extra fields ignored) for an object JSON Schema, fields in `properties` order.

    A required field has no default; any other field takes its `default`, or None when it declares none.
    Raises SchemaError for a schema it cannot read.
    """
    title = str(name or schema.get("title") or "Input")
    required = set(schema.get("required", ()))
    fields: dict[str, Any] = {}
    for field_name, prop in schema.get("properties", {}).items():
        annotation = annotation_for(prop, f"{title}_{field_name}")
        default = ... if field_name in required else prop.get("default")
        python_name = _python_name(field_name, set(fields))
        alias = {} if python_name == field_name else {"alias": field_name}
        fields[python_name] = (annotation, Field(default, **alias))
    model: type[BaseModel] = create_model(title, __config__=MODEL_CONFIG, **fields)
    return model
