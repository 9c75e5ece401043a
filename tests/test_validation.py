from __future__ import annotations

from typing import Any

import pytest

from fal_emulator.catalog import load_catalog
from fal_emulator.errors import ModelError
from fal_emulator.validation import InputValidator, parse_json_body

CATALOG = load_catalog()
SEEDS = [
    "fal-ai/veo3/image-to-video",
    "fal-ai/veo2/image-to-video",
    "fal-ai/veo3.1/reference-to-video",
    "fal-ai/veo3.1/fast/image-to-video",
]


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
def test_missing_prompt_is_a_missing_field_error(endpoint_id: str) -> None:
    body = example(endpoint_id)
    del body["prompt"]
    assert validator(endpoint_id).errors(body) == [
        {
            "loc": ["body", "prompt"],
            "msg": "Field required",
            "type": "missing",
            "url": "https://docs.fal.ai/errors/#missing",
        }
    ]


@pytest.mark.parametrize("endpoint_id", SEEDS)
def test_wrong_type_names_the_field_and_the_input(endpoint_id: str) -> None:
    body = {**example(endpoint_id), "prompt": 42}
    [item] = validator(endpoint_id).errors(body)
    assert item["loc"] == ["body", "prompt"]
    assert (item["type"], item["msg"], item["input"]) == ("string_type", "Input should be a valid string", 42)


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
            "loc": ["body", "aspect_ratio"],
            "msg": f"Input should be {expected}",
            "type": "literal_error",
            "url": "https://docs.fal.ai/errors/#literal_error",
            "ctx": {"expected": expected},
            "input": "21:9",
        }
    ]


def test_every_problem_is_reported_with_nested_locations() -> None:
    body = {"image_urls": ["https://x/a.png", 7], "duration": "5s"}
    items = validator("fal-ai/veo3.1/reference-to-video").errors(body)
    assert [(item["loc"], item["type"]) for item in items] == [
        (["body", "prompt"], "missing"),
        (["body", "duration"], "literal_error"),
        (["body", "image_urls", 1], "string_type"),
    ]


def test_a_body_that_is_not_an_object_is_rejected() -> None:
    [item] = validator("fal-ai/veo3/image-to-video").errors(["prompt"])
    assert (item["loc"], item["type"]) == (["body"], "model_attributes_type")


def test_validate_raises_a_422_model_error() -> None:
    with pytest.raises(ModelError) as caught:
        validator("fal-ai/veo3/image-to-video").validate({})
    assert caught.value.status_code == 422
    assert caught.value.headers["X-Fal-Error-Type"] == "missing"
    assert [item["loc"] for item in caught.value.body["detail"]] == [["body", "prompt"], ["body", "image_url"]]


def test_malformed_json_is_a_json_invalid_error_with_its_position() -> None:
    with pytest.raises(ModelError) as caught:
        parse_json_body(b'{"prompt": ')
    [item] = caught.value.body["detail"]
    assert (item["loc"], item["type"], item["msg"]) == (["body", 11], "json_invalid", "JSON decode error")


@pytest.mark.parametrize("raw", [b"", b"  \n"])
def test_an_empty_body_is_a_missing_body(raw: bytes) -> None:
    with pytest.raises(ModelError) as caught:
        parse_json_body(raw)
    assert caught.value.body["detail"][0]["loc"] == ["body"]


def test_a_body_that_is_not_utf8_is_json_invalid() -> None:
    with pytest.raises(ModelError) as caught:
        parse_json_body(b'{"prompt": "\xff"}')
    assert caught.value.body["detail"][0]["type"] == "json_invalid"


def test_a_null_input_is_echoed_as_null() -> None:
    [item] = validator("fal-ai/veo3/image-to-video").errors({**example("fal-ai/veo3/image-to-video"), "prompt": None})
    assert item["input"] is None and item["type"] == "string_type"


def test_a_wrong_type_for_an_enum_field_is_one_literal_error() -> None:
    items = validator("fal-ai/veo3/image-to-video").errors({**example("fal-ai/veo3/image-to-video"), "duration": 8})
    assert [(item["loc"], item["type"]) for item in items] == [(["body", "duration"], "literal_error")]


def test_problems_are_listed_in_schema_order() -> None:
    body = {"resolution": "8k", "aspect_ratio": "2:1", "image_url": 5}
    items = validator("fal-ai/veo3/image-to-video").errors(body)
    assert [item["loc"][1] for item in items] == ["prompt", "image_url", "aspect_ratio", "resolution"]
