"""Input validation as a fal runner does it: FastAPI + pydantic v2 in lax mode, fal's 422 detail list.

The expected items are pydantic's own output as FastAPI hands it on: `{type, loc, msg, input, ctx?}`, no
`url` (FastAPI takes the errors with `include_url=False`), `loc` starting with "body".
"""

from __future__ import annotations

from typing import Any

import pytest

from fal_emulator.catalog import load_catalog
from fal_emulator.errors import RequestValidationError
from fal_emulator.validation import InputValidator, parse_json_body

CATALOG = load_catalog()
SEEDS = [
    "fal-ai/veo3/image-to-video",
    "fal-ai/veo2/image-to-video",
    "fal-ai/veo3.1/reference-to-video",
    "fal-ai/veo3.1/fast/image-to-video",
]
I2V = "fal-ai/veo3/image-to-video"


def validator(endpoint_id: str) -> InputValidator:
    endpoint = CATALOG.get(endpoint_id)
    assert endpoint is not None
    return InputValidator(endpoint.input_schema)


def example(endpoint_id: str) -> dict[str, Any]:
    endpoint = CATALOG.get(endpoint_id)
    assert endpoint is not None
    return dict(endpoint.example_input)


@pytest.mark.parametrize("endpoint_id", [endpoint.endpoint_id for endpoint in CATALOG])
def test_every_documented_example_is_valid(endpoint_id: str) -> None:
    assert validator(endpoint_id).errors(example(endpoint_id)) == []


@pytest.mark.parametrize("endpoint_id", SEEDS)
def test_missing_prompt_is_pydantics_missing_item_echoing_the_body(endpoint_id: str) -> None:
    body = example(endpoint_id)
    del body["prompt"]
    assert validator(endpoint_id).errors(body) == [
        {"type": "missing", "loc": ["body", "prompt"], "msg": "Field required", "input": body}
    ]


@pytest.mark.parametrize("endpoint_id", SEEDS)
def test_a_number_for_a_string_is_a_string_type_error(endpoint_id: str) -> None:
    """Lax mode coerces many things, but never a number into a string."""
    body = {**example(endpoint_id), "prompt": 42}
    assert validator(endpoint_id).errors(body) == [
        {"type": "string_type", "loc": ["body", "prompt"], "msg": "Input should be a valid string", "input": 42}
    ]


@pytest.mark.parametrize(
    ("endpoint_id", "expected"),
    [
        ("fal-ai/veo3/image-to-video", "'16:9', '9:16' or 'auto'"),
        ("fal-ai/veo2/image-to-video", "'auto', 'auto_prefer_portrait', '16:9' or '9:16'"),
        ("fal-ai/veo3.1/reference-to-video", "'16:9' or '9:16'"),
        ("fal-ai/veo3.1/fast/image-to-video", "'auto', '9:16', '16:9' or '1:1'"),
    ],
)
def test_bad_enum_value_is_a_literal_error_listing_the_choices(endpoint_id: str, expected: str) -> None:
    body = {**example(endpoint_id), "aspect_ratio": "21:9"}
    assert validator(endpoint_id).errors(body) == [
        {
            "type": "literal_error",
            "loc": ["body", "aspect_ratio"],
            "msg": f"Input should be {expected}",
            "input": "21:9",
            "ctx": {"expected": expected},
        }
    ]


def test_no_item_carries_a_url() -> None:
    """FastAPI 0.136 `fastapi/_compat/v2.py` takes pydantic's errors with `include_url=False`; fal's handler
    (`fal/api/api.py`) passes them on unchanged. So a runner's 422 has neither pydantic's nor fal's docs URL."""
    items = validator(I2V).errors({"prompt": 1, "aspect_ratio": "x", "generate_audio": "maybe", "seed": "a"})
    assert len(items) == 5  # prompt, image_url (missing), aspect_ratio, generate_audio, seed
    assert all("url" not in item for item in items)


def test_every_problem_is_reported_in_field_order_with_nested_locations() -> None:
    body = {"image_urls": ["https://x/a.png", 7], "duration": "5s"}
    items = validator("fal-ai/veo3.1/reference-to-video").errors(body)
    assert [(item["loc"], item["type"]) for item in items] == [
        (["body", "prompt"], "missing"),
        (["body", "duration"], "literal_error"),
        (["body", "image_urls", 1], "string_type"),
    ]


def test_a_body_that_is_not_an_object_is_model_attributes_type() -> None:
    """FastAPI validates with `from_attributes=True`, hence pydantic's `model_attributes_type`."""
    assert validator(I2V).errors(["prompt"]) == [
        {
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": ["prompt"],
        }
    ]


def test_a_null_body_is_a_missing_body() -> None:
    """FastAPI `_validate_value_with_model_field`: a required body that is None is `get_missing_field_error`."""
    assert validator(I2V).errors(None) == [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]


def test_validate_raises_fastapis_422_with_zero_billable_units() -> None:
    with pytest.raises(RequestValidationError) as caught:
        validator(I2V).validate({})
    assert caught.value.status_code == 422
    assert caught.value.headers == {"x-fal-billable-units": "0"}  # fal's handler sets only this header
    assert caught.value.error_type is None
    assert [item["loc"] for item in caught.value.body["detail"]] == [["body", "prompt"], ["body", "image_url"]]


# -- lax mode: what a fal runner accepts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"generate_audio": "false"}, "generate_audio", False),
        ({"generate_audio": "true"}, "generate_audio", True),
        ({"generate_audio": 0}, "generate_audio", False),
        ({"generate_audio": "yes"}, "generate_audio", True),
        ({"seed": "42"}, "seed", 42),
        ({"seed": 42.0}, "seed", 42),
        ({"seed": None}, "seed", None),
        ({"negative_prompt": None}, "negative_prompt", None),
    ],
)
def test_lax_values_are_accepted_and_coerced(change: dict[str, Any], field: str, value: Any) -> None:
    values = validator(I2V).validate({**example(I2V), **change})
    assert values[field] == value and type(values[field]) is type(value)


@pytest.mark.parametrize(
    ("change", "type_"),
    [
        ({"generate_audio": "maybe"}, "bool_parsing"),
        ({"seed": "4.5"}, "int_parsing"),
        ({"seed": 4.5}, "int_from_float"),
        ({"aspect_ratio": None}, "literal_error"),
        ({"duration": 8}, "literal_error"),
        ({"prompt": None}, "string_type"),
    ],
)
def test_lax_mode_still_refuses_what_it_cannot_coerce(change: dict[str, Any], type_: str) -> None:
    [item] = validator(I2V).errors({**example(I2V), **change})
    assert (item["loc"], item["type"]) == (["body", next(iter(change))], type_)


def test_the_validated_values_fill_in_defaults_and_drop_unknown_fields() -> None:
    values = validator(I2V).validate({"prompt": "p", "image_url": "https://x/a.png", "unknown": 1})
    assert values == {
        "prompt": "p",
        "image_url": "https://x/a.png",
        "aspect_ratio": "auto",
        "duration": "8s",
        "generate_audio": True,
        "resolution": "720p",
        "negative_prompt": None,
        "seed": None,
        "auto_fix": False,
        "safety_tolerance": "4",
    }


# -- the body itself -----------------------------------------------------------------------------------------


def test_malformed_json_is_fastapis_json_invalid_item() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_json_body(b'{"prompt": ')
    assert caught.value.body["detail"] == [
        {
            "type": "json_invalid",
            "loc": ["body", 11],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": "Expecting value"},
        }
    ]
    assert caught.value.headers == {"x-fal-billable-units": "0"}


@pytest.mark.parametrize("raw", [b"", b"  \n"])
def test_an_empty_body_is_a_missing_body(raw: bytes) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_json_body(raw)
    assert caught.value.body["detail"] == [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]


def test_a_body_that_is_not_utf8_is_json_invalid() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_json_body(b'{"prompt": "\xff"}')
    assert caught.value.body["detail"][0]["type"] == "json_invalid"
