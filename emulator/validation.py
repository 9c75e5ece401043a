"""Input validation as a fal runner does it: FastAPI + pydantic v2 (lax mode) -> fal's 422 `detail` list.

A fal app's endpoint takes one pydantic model as its body (`fal_emulator.models` builds it from the
endpoint's input schema in `openapi/`). FastAPI validates the parsed JSON body against it and answers a
rejected body with `422 {"detail": [{"type", "loc", "msg", "input", "ctx"?}]}`: pydantic's own error items,
taken with `include_url=False` (so no `url`), `loc` prefixed by `"body"`; a `null` (or empty) body is one
`missing` item at `["body"]`. fal's handler adds `x-fal-billable-units: 0`.

Sources: FastAPI 0.136 `fastapi/_compat/v2.py` (`ModelField.validate`, `_regenerate_error_with_loc`),
`fastapi/dependencies/utils.py` (`_validate_value_with_model_field`), `fastapi/routing.py` (`json_invalid`);
github fal-ai/fal `projects/fal/src/fal/api/api.py` (`request_val_exception_handler`).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from fal_emulator.errors import JSON, RequestValidationError
from fal_emulator.limits import load_json
from fal_emulator.models import model_from_schema


def _jsonable(value: Any) -> Any:
    """What FastAPI's `jsonable_encoder` (with fal's custom encoders) makes of an error item's values."""
    if isinstance(value, BaseException):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def missing_body() -> JSON:
    """FastAPI's item for a required body that is absent or `null` (`get_missing_field_error`)."""
    return {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}


@functools.lru_cache(maxsize=256)
def _model(schema_text: str, name: str | None) -> type[BaseModel]:
    """One model per distinct schema: every Emulator (and test) built from the same documents shares it."""
    return model_from_schema(json.loads(schema_text), name)


class InputValidator:
    """Validates the inputs of one endpoint with the pydantic model of its input schema, as its runner would."""

    def __init__(self, schema: Mapping[str, Any], name: str | None = None) -> None:
        self.model: type[BaseModel] = _model(json.dumps(schema), name)  # key order kept: it is the field order

    def _check(self, instance: Any) -> tuple[dict[str, Any] | None, list[JSON]]:
        if instance is None:
            return None, [missing_body()]
        try:
            validated = self.model.model_validate(instance, from_attributes=True)
        except ValidationError as exc:
            items = [{**item, "loc": ["body", *item["loc"]]} for item in exc.errors(include_url=False)]
            return None, [_jsonable(item) for item in items]
        return validated.model_dump(by_alias=True), []

    def errors(self, instance: Any) -> list[JSON]:
        """fal's `detail` items for every problem in `instance` (parsed JSON), in field order; [] when valid."""
        return self._check(instance)[1]

    def validate(self, instance: Any) -> dict[str, Any]:
        """The validated (coerced) input, every declared field present (defaults filled in, unknown fields dropped).

        Raises RequestValidationError (422) listing every problem in `instance`.
        """
        values, items = self._check(instance)
        if values is None:
            raise RequestValidationError(items)
        return values


def parse_json_body(raw: bytes) -> Any:
    """Decode a request body as JSON the way FastAPI does. Raises RequestValidationError (422) when it is not JSON.

    An empty body is `missing` (input null); anything else that is not strict JSON within the edge's limits
    (`fal_emulator.limits.load_json`: malformed text, `NaN`, numbers too long or out of range, lone
    surrogates, nesting deeper than `MAX_JSON_DEPTH`) is `json_invalid`.
    """
    if not raw.strip():
        raise RequestValidationError([missing_body()])
    try:
        return load_json(raw)
    except json.JSONDecodeError as exc:
        position, reason = exc.pos, exc.msg
    except UnicodeError as exc:
        position, reason = getattr(exc, "start", 0), str(getattr(exc, "reason", exc))
    except (ValueError, RecursionError) as exc:  # JsonLimitError is a ValueError
        position, reason = 0, str(exc) if isinstance(exc, ValueError) else "nesting too deep"
    item = {"type": "json_invalid", "loc": ["body", position], "msg": "JSON decode error", "input": {}}
    raise RequestValidationError([{**item, "ctx": {"error": reason}}])
