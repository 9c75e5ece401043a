"""Static checks of the per-endpoint fal queue OpenAPI documents in ``openapi/``.

Each document must be a loadable OpenAPI 3.0 document of the uniform shape the emulator parses, its file name must
follow the endpoint id, its submit example must satisfy its input schema, and the four seed endpoints must match
their seed documents (fields, enums in seed order, defaults, required lists). The same documents are the contract
kit's: links from submit to status, stream, result and cancel (and from the result to its video), the
``x-fal-request-id`` header on every queue answer, ``text/event-stream`` and ``video/mp4`` media.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from tests.conftest import SEED_REQUESTS

OPENAPI_DIR = Path(__file__).resolve().parent.parent / "openapi"

ENDPOINT_IDS = frozenset(
    {
        "fal-ai/veo2",
        "fal-ai/veo2/image-to-video",
        "fal-ai/veo3",
        "fal-ai/veo3/fast",
        "fal-ai/veo3/image-to-video",
        "fal-ai/veo3/fast/image-to-video",
        "fal-ai/veo3.1",
        "fal-ai/veo3.1/fast",
        "fal-ai/veo3.1/image-to-video",
        "fal-ai/veo3.1/fast/image-to-video",
        "fal-ai/veo3.1/reference-to-video",
        "fal-ai/veo3.1/first-last-frame-to-video",
        "fal-ai/veo3.1/fast/first-last-frame-to-video",
        "fal-ai/veo3.1/extend-video",
        "fal-ai/veo3.1/fast/extend-video",
        "fal-ai/veo3.1/lite",
        "fal-ai/veo3.1/lite/image-to-video",
        "fal-ai/veo3.1/lite/first-last-frame-to-video",
    }
)

CATEGORIES = frozenset({"text-to-video", "image-to-video", "video-to-video"})
SHARED_SCHEMAS = frozenset(
    {
        "QueueStatus",
        "QueueStatusEvent",
        "File",
        "HTTPValidationError",
        "ValidationError",
        "CancelStatus",
        "ErrorDetail",
        "RequestNotFound",
        "StoredError",
    }
)
QUEUE_OPERATIONS = ("submit", "status", "streamStatus", "cancel", "result")
# JSON Schema keywords newer than OpenAPI 3.0 that fal's documents (``examples``) and ours (the SSE event's
# ``contentMediaType``/``contentSchema``, which Schemathesis reads) put in schema objects.
NEWER_KEYWORDS = frozenset({"examples", "contentMediaType", "contentSchema"})
NULL = {"type": "null"}  # fal's pydantic form of an optional field: anyOf [T, {type: "null"}] (JSON Schema 2020-12)

# Seed endpoints: field order (== the complete field set), required list, enums (seed order) and defaults. The
# seed stands for its own fields; `from_types` are the fields @fal-ai/client 1.10.1's endpoints.d.ts adds
# (tests/test_client_types.py compares every document with those types).
SAFETY_TOLERANCE = ["1", "2", "3", "4", "5", "6"]
FROM_TYPES_I2V = ["negative_prompt", "seed", "auto_fix", "safety_tolerance"]
SEEDS: dict[str, dict[str, Any]] = {
    "fal-ai/veo2/image-to-video": {
        "order": ["prompt", "image_url", "aspect_ratio", "duration"],
        "required": ["prompt", "image_url"],
        "enums": {
            "aspect_ratio": ["auto", "auto_prefer_portrait", "16:9", "9:16"],
            "duration": ["5s", "6s", "7s", "8s"],
        },
        "from_types": [],
        "defaults": {"aspect_ratio": "auto", "duration": "5s"},
        "types": {"prompt": "string", "image_url": "string"},
    },
    "fal-ai/veo3.1/reference-to-video": {
        "order": [
            "prompt",
            "aspect_ratio",
            "duration",
            "negative_prompt",
            "resolution",
            "generate_audio",
            "seed",
            "auto_fix",
            "safety_tolerance",
            "image_urls",
        ],
        "from_types": ["safety_tolerance"],
        "required": ["prompt", "image_urls"],
        "enums": {
            "aspect_ratio": ["16:9", "9:16"],
            "duration": ["8s"],
            "resolution": ["720p", "1080p"],
            "safety_tolerance": SAFETY_TOLERANCE,
        },
        "defaults": {
            "aspect_ratio": "16:9",
            "duration": "8s",
            "resolution": "720p",
            "generate_audio": True,
            "auto_fix": False,
            "safety_tolerance": "4",
        },
        "types": {"negative_prompt": "string", "seed": "integer", "auto_fix": "boolean", "image_urls": "array"},
    },
    "fal-ai/veo3.1/fast/image-to-video": {
        "order": ["prompt", "image_url", "aspect_ratio", "duration", "generate_audio", "resolution", *FROM_TYPES_I2V],
        "from_types": FROM_TYPES_I2V,
        "required": ["prompt", "image_url"],
        "enums": {
            "aspect_ratio": ["auto", "9:16", "16:9", "1:1"],
            "duration": ["4s", "6s", "8s"],
            "resolution": ["720p", "1080p"],
            "safety_tolerance": SAFETY_TOLERANCE,
        },
        "defaults": {
            "aspect_ratio": "auto",
            "duration": "8s",
            "generate_audio": True,
            "resolution": "720p",
            "auto_fix": False,
            "safety_tolerance": "4",
        },
        "types": {"generate_audio": "boolean", "seed": "integer", "negative_prompt": "string"},
    },
    "fal-ai/veo3/image-to-video": {
        "order": ["prompt", "image_url", "aspect_ratio", "duration", "generate_audio", "resolution", *FROM_TYPES_I2V],
        "from_types": FROM_TYPES_I2V,
        "required": ["prompt", "image_url"],
        "enums": {
            "aspect_ratio": ["16:9", "9:16", "auto"],
            "duration": ["4s", "6s", "8s"],
            "resolution": ["720p", "1080p"],
            "safety_tolerance": SAFETY_TOLERANCE,
        },
        "defaults": {
            "aspect_ratio": "auto",
            "duration": "8s",
            "generate_audio": True,
            "resolution": "720p",
            "auto_fix": False,
            "safety_tolerance": "4",
        },
        "types": {"generate_audio": "boolean", "seed": "integer", "negative_prompt": "string"},
    },
}

# Description texts the fal.ai pages of seeds 002/003/004 give (without the rendered "Default value: ..." suffix).
SEED_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "fal-ai/veo2/image-to-video": {
        "prompt": "The text prompt describing how the image should be animated",
        "image_url": "URL of the input image to animate. Should be 720p or higher resolution.",
        "aspect_ratio": "The aspect ratio of the generated video",
        "duration": "The duration of the generated video in seconds",
    },
    "fal-ai/veo3.1/reference-to-video": {
        "prompt": "The text prompt describing the video you want to generate",
        "aspect_ratio": "The aspect ratio of the generated video.",
        "duration": "The duration of the generated video.",
        "negative_prompt": "A negative prompt to guide the video generation.",
        "resolution": "The resolution of the generated video.",
        "generate_audio": "Whether to generate audio for the video.",
        "seed": "The seed for the random number generator.",
        "auto_fix": (
            "Whether to automatically attempt to fix prompts that fail content policy or other validation checks "
            "by rewriting them."
        ),
        "image_urls": "URLs of the reference images to use for consistent subject appearance",
    },
    "fal-ai/veo3.1/fast/image-to-video": {
        "prompt": "The text prompt describing how the image should be animated",
        "image_url": (
            "URL of the input image to animate. Should be 720p or higher resolution in 16:9 or 9:16 aspect ratio. "
            "If the image is not in 16:9 or 9:16 aspect ratio, it will be cropped to fit."
        ),
        "aspect_ratio": "The aspect ratio of the generated video",
        "duration": "The duration of the generated video in seconds",
        "generate_audio": "Whether to generate audio for the video. If false, 33% less credits will be used.",
        "resolution": "Resolution of the generated video",
    },
}

# Seed request examples, verbatim.
SEED_EXAMPLES: dict[str, dict[str, Any]] = {
    "fal-ai/veo2/image-to-video": SEED_REQUESTS["fal-ai/veo2/image-to-video"],
    "fal-ai/veo3.1/reference-to-video": SEED_REQUESTS["fal-ai/veo3.1/reference-to-video"],
    # seed 004's "Full Example" (the request the Python usage sends is its "Required Parameters Example")
    "fal-ai/veo3.1/fast/image-to-video": {
        "prompt": (
            'A woman looks into the camera, breathes in, then exclaims energetically, "have you guys checked out '
            "Veo3 Image-to-Video on Fal? It's incredible!\""
        ),
        "image_url": "https://storage.googleapis.com/falserverless/example_inputs/veo3-i2v-input.png",
        "aspect_ratio": "auto",
        "duration": "8s",
        "generate_audio": True,
        "resolution": "720p",
    },
}
SEED_EXAMPLES["fal-ai/veo3/image-to-video"] = SEED_EXAMPLES["fal-ai/veo3.1/fast/image-to-video"]

# Expectations from fal-protocol.md §7 and endpoints.d.ts for the non-seed endpoints: (aspect_ratio enum,
# resolution enum or None, duration enum, auto_fix default, has safety_tolerance).
V3X_DURATIONS = ["4s", "6s", "8s"]
CATALOGUE: dict[str, tuple[list[str], list[str] | None, list[str], bool, bool]] = {
    "fal-ai/veo2": (["16:9", "9:16", "1:1"], None, ["5s", "6s", "7s", "8s"], True, False),
    "fal-ai/veo3": (["16:9", "9:16"], ["720p", "1080p"], V3X_DURATIONS, True, True),
    "fal-ai/veo3/fast": (["16:9", "9:16"], ["720p", "1080p"], V3X_DURATIONS, True, True),
    "fal-ai/veo3.1": (["16:9", "9:16"], ["720p", "1080p", "4k"], V3X_DURATIONS, True, True),
    "fal-ai/veo3.1/fast": (["16:9", "9:16"], ["720p", "1080p", "4k"], V3X_DURATIONS, True, True),
    "fal-ai/veo3.1/image-to-video": (["auto", "16:9", "9:16"], ["720p", "1080p", "4k"], V3X_DURATIONS, False, True),
    "fal-ai/veo3.1/first-last-frame-to-video": (
        ["auto", "16:9", "9:16"],
        ["720p", "1080p", "4k"],
        V3X_DURATIONS,
        False,
        True,
    ),
    "fal-ai/veo3.1/fast/first-last-frame-to-video": (
        ["auto", "16:9", "9:16"],
        ["720p", "1080p", "4k"],
        V3X_DURATIONS,
        False,
        True,
    ),
    "fal-ai/veo3.1/extend-video": (["auto", "16:9", "9:16"], ["720p"], ["7s"], False, True),
    "fal-ai/veo3.1/fast/extend-video": (["auto", "16:9", "9:16"], ["720p"], ["7s"], False, True),
    "fal-ai/veo3.1/lite": (["16:9", "9:16"], ["720p", "1080p"], V3X_DURATIONS, True, True),
    "fal-ai/veo3.1/lite/image-to-video": (["auto", "16:9", "9:16"], ["720p", "1080p"], V3X_DURATIONS, False, True),
    "fal-ai/veo3.1/lite/first-last-frame-to-video": (
        ["auto", "16:9", "9:16"],
        ["720p", "1080p"],
        V3X_DURATIONS,
        False,
        True,
    ),
}

# Required inputs of the non-seed endpoints.
REQUIRED: dict[str, list[str]] = {
    "fal-ai/veo2": ["prompt"],
    "fal-ai/veo3": ["prompt"],
    "fal-ai/veo3/fast": ["prompt"],
    "fal-ai/veo3/fast/image-to-video": ["prompt", "image_url"],
    "fal-ai/veo3.1": ["prompt"],
    "fal-ai/veo3.1/fast": ["prompt"],
    "fal-ai/veo3.1/image-to-video": ["prompt", "image_url"],
    "fal-ai/veo3.1/first-last-frame-to-video": ["prompt", "first_frame_url", "last_frame_url"],
    "fal-ai/veo3.1/fast/first-last-frame-to-video": ["prompt", "first_frame_url", "last_frame_url"],
    "fal-ai/veo3.1/lite/first-last-frame-to-video": ["prompt", "first_frame_url", "last_frame_url"],
    "fal-ai/veo3.1/extend-video": ["prompt", "video_url"],
    "fal-ai/veo3.1/fast/extend-video": ["prompt", "video_url"],
    "fal-ai/veo3.1/lite": ["prompt"],
    "fal-ai/veo3.1/lite/image-to-video": ["prompt", "image_url"],
}


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    assert isinstance(doc, dict), path
    return doc


DOCUMENTS: dict[str, dict[str, Any]] = {path.name: _load(path) for path in sorted(OPENAPI_DIR.glob("*.yaml"))}
BY_ENDPOINT: dict[str, dict[str, Any]] = {
    doc["info"]["x-fal-metadata"]["endpointId"]: doc for doc in DOCUMENTS.values()
}

documents = pytest.mark.parametrize("name", sorted(DOCUMENTS))


def endpoint_id(doc: dict[str, Any]) -> str:
    value = doc["info"]["x-fal-metadata"]["endpointId"]
    assert isinstance(value, str)
    return value


def schema_name(ref: dict[str, Any]) -> str:
    target = ref["$ref"]
    assert isinstance(target, str)
    assert target.startswith("#/components/schemas/"), target
    return target.removeprefix("#/components/schemas/")


def submit_operation(doc: dict[str, Any]) -> dict[str, Any]:
    operation = doc["paths"][f"/{endpoint_id(doc)}"]["post"]
    assert isinstance(operation, dict)
    return operation


def input_schema_name(doc: dict[str, Any]) -> str:
    return schema_name(submit_operation(doc)["requestBody"]["content"]["application/json"]["schema"])


def input_schema(doc: dict[str, Any]) -> dict[str, Any]:
    schema = doc["components"]["schemas"][input_schema_name(doc)]
    assert isinstance(schema, dict)
    return schema


def validator_for(doc: dict[str, Any], name: str) -> Draft7Validator:
    """A validator for ``#/components/schemas/<name>`` that resolves ``$ref`` against the whole document."""
    registry: Registry[Any] = Registry().with_resource("urn:openapi-document", DRAFT7.create_resource(doc))
    return Draft7Validator({"$ref": f"urn:openapi-document#/components/schemas/{name}"}, registry=registry)


def _without_schema_examples(node: Any) -> Any:
    """Drop the JSON Schema keywords newer than OpenAPI 3.0 (``NEWER_KEYWORDS``) from schema objects, and write
    fal's nullable ``anyOf [T, {type: "null"}]`` as OpenAPI 3.0's ``T`` + ``nullable: true``.

    fal's documents declare ``openapi: 3.0.4`` yet put JSON-Schema ``examples`` and pydantic's ``{type: "null"}``
    into schema objects, which the strict OpenAPI 3.0 meta-schema rejects; ours do the same with the SSE event's
    ``contentMediaType``/``contentSchema``. Everything else must pass that meta-schema.
    """
    if isinstance(node, dict):
        branches = node.get("anyOf")
        if isinstance(branches, list) and NULL in branches and len(branches) == 2:
            (other,) = (branch for branch in branches if branch != NULL)
            node = {**{key: value for key, value in node.items() if key != "anyOf"}, **other, "nullable": True}
        return {key: _without_schema_examples(value) for key, value in node.items() if key not in NEWER_KEYWORDS}
    if isinstance(node, list):
        return [_without_schema_examples(item) for item in node]
    return node


def declared_type(prop: dict[str, Any]) -> str:
    """A property's JSON type; for fal's nullable ``anyOf [{type: T}, {type: "null"}]`` it is T."""
    if "anyOf" in prop:
        others = [branch for branch in prop["anyOf"] if branch != NULL]
        assert len(others) == 1 and NULL in prop["anyOf"], prop
        return str(others[0]["type"])
    return str(prop["type"])


def iter_operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if not method.startswith("x-"):
                yield path, method, operation


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or what its local ``$ref`` points at."""
    while "$ref" in node:
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_exactly_the_catalogue_is_documented() -> None:
    assert len(DOCUMENTS) == 18
    assert set(BY_ENDPOINT) == ENDPOINT_IDS
    assert set(SEEDS) | set(CATALOGUE) | {"fal-ai/veo3/fast/image-to-video"} == ENDPOINT_IDS


@documents
def test_file_name_matches_endpoint_id(name: str) -> None:
    doc = DOCUMENTS[name]
    assert name == endpoint_id(doc).replace("/", "__") + ".yaml"


@documents
def test_is_a_loadable_openapi_30_document(name: str) -> None:
    doc = DOCUMENTS[name]
    assert doc["openapi"] == "3.0.4"
    schema = schemathesis.openapi.from_dict(copy.deepcopy(doc))
    declared = list(iter_operations(doc))
    assert schema.statistic.operations.total == len(declared) == 6
    assert schema.statistic.transitions.total == 5  # submit -> status, stream, result, cancel; result -> video
    for path, method, operation in declared:
        assert schema[path][method.upper()].label == f"{method.upper()} {path}"
        assert schema.find_operation_by_id(operation["operationId"]).label == f"{method.upper()} {path}"
    assert list(schema.iter_schema_warnings()) == []
    # Strict meta-schema validation, modulo fal's `examples` in schema objects.
    schemathesis.openapi.from_dict(_without_schema_examples(doc)).validate()


@documents
def test_info_servers_and_security(name: str) -> None:
    doc = DOCUMENTS[name]
    eid = endpoint_id(doc)
    assert doc["info"]["title"] == f"Queue OpenAPI for {eid}"
    assert doc["info"]["version"] == "1.0.0"
    assert doc["info"]["description"] == f"The OpenAPI schema for the {eid} queue."
    metadata = doc["info"]["x-fal-metadata"]
    assert metadata["category"] in CATEGORIES
    assert metadata["playgroundUrl"] == f"https://fal.ai/models/{eid}"
    assert metadata["documentationUrl"] == f"https://fal.ai/models/{eid}/api"
    expected_category = (
        "video-to-video"
        if eid.endswith("extend-video")
        else "image-to-video"
        if eid.endswith(("image-to-video", "reference-to-video", "first-last-frame-to-video"))
        else "text-to-video"
    )
    assert metadata["category"] == expected_category
    assert doc["servers"] == [{"url": "https://queue.fal.run"}]
    assert doc["security"] == [{"apiKeyAuth": []}]
    scheme = doc["components"]["securitySchemes"]["apiKeyAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")


@documents
def test_queue_paths_and_operations(name: str) -> None:
    doc = DOCUMENTS[name]
    eid = endpoint_id(doc)
    base = f"/{eid}/requests/{{request_id}}"
    expected = {
        f"/{eid}": ("post", "submit"),
        f"{base}/status": ("get", "status"),
        f"{base}/status/stream": ("get", "streamStatus"),
        f"{base}/cancel": ("put", "cancel"),
        base: ("get", "result"),
        "/files/{file_name}": ("get", "downloadFile"),
    }
    methods = {path: [key for key in item if not key.startswith("x-")] for path, item in doc["paths"].items()}
    assert methods == {path: [method] for path, (method, _) in expected.items()}
    for path, (method, operation_id) in expected.items():
        assert doc["paths"][path][method]["operationId"] == operation_id

    submit = doc["paths"][f"/{eid}"]["post"]
    assert submit["requestBody"]["required"] is True
    assert set(submit["responses"]) == {"200", "401", "422"}
    assert schema_name(submit["responses"]["200"]["content"]["application/json"]["schema"]) == "QueueStatus"
    assert schema_name(submit["responses"]["422"]["content"]["application/json"]["schema"]) == "HTTPValidationError"

    for suffix in ("/status", "/status/stream"):
        operation = doc["paths"][base + suffix]["get"]
        params = {param["name"]: param for param in operation["parameters"]}
        assert params["request_id"]["in"] == "path"
        assert params["request_id"]["required"] is True
        assert params["request_id"]["schema"] == {"type": "string"}
        assert params["logs"]["in"] == "query"
        assert params["logs"]["required"] is False
        # fal_client sends logs=true/false, @fal-ai/client logs=1/0; an empty value reads as 0.
        assert params["logs"]["schema"] == {"anyOf": [{"type": "integer", "enum": [0, 1]}, {"type": "boolean"}]}
        assert params["logs"]["allowEmptyValue"] is True
        assert params["logs"]["description"] == "Whether to include logs (`1`) in the response or not (`0`)."
        not_found = operation["responses"]["404"]["content"]["application/json"]["schema"]
        assert schema_name(not_found) == "RequestNotFound"
        assert schema_name(operation["responses"]["422"]["content"]["application/json"]["schema"]) == (
            "HTTPValidationError"
        )

    status = doc["paths"][f"{base}/status"]["get"]["responses"]
    assert set(status) == {"200", "202", "401", "404", "422"}
    assert status["200"]["description"] == "The request is completed"
    assert status["202"]["description"] == "The request is queued or in progress"
    for code in ("200", "202"):
        assert schema_name(status[code]["content"]["application/json"]["schema"]) == "QueueStatus"

    stream = doc["paths"][f"{base}/status/stream"]["get"]["responses"]
    assert set(stream) == {"200", "401", "404", "422"}
    assert schema_name(stream["200"]["content"]["text/event-stream"]["schema"]) == "QueueStatusEvent"

    cancel = doc["paths"][f"{base}/cancel"]["put"]["responses"]
    assert set(cancel) == {"202", "400", "401", "404"}
    assert {
        code: response["content"]["application/json"]["example"]["status"]
        for code, response in cancel.items()
        if code != "401"
    } == {
        "202": "CANCELLATION_REQUESTED",
        "400": "ALREADY_COMPLETED",
        "404": "NOT_FOUND",
    }
    for code, response in cancel.items():
        if code != "401":
            assert schema_name(response["content"]["application/json"]["schema"]) == "CancelStatus"

    result = doc["paths"][base]["get"]["responses"]
    assert set(result) == {"200", "400", "401", "404", "default"}
    assert schema_name(result["default"]["content"]["application/json"]["schema"]) == "StoredError"
    output_name = schema_name(result["200"]["content"]["application/json"]["schema"])
    assert output_name == input_schema_name(doc).removesuffix("Input") + "Output"
    assert schema_name(result["400"]["content"]["application/json"]["schema"]) == "ErrorDetail"


@documents
def test_shared_schemas(name: str) -> None:
    doc = DOCUMENTS[name]
    schemas = doc["components"]["schemas"]
    in_name = input_schema_name(doc)
    out_name = in_name.removesuffix("Input") + "Output"
    assert set(schemas) == SHARED_SCHEMAS | {in_name, out_name}

    queue_status = schemas["QueueStatus"]
    assert queue_status["required"] == ["status", "request_id"]
    assert queue_status["properties"]["status"]["enum"] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert {key: prop["type"] for key, prop in queue_status["properties"].items()} == {
        "status": "string",
        "request_id": "string",
        "response_url": "string",
        "status_url": "string",
        "cancel_url": "string",
        "logs": "array",
        "metrics": "object",
        "queue_position": "integer",
        "error": "string",
        "error_type": "string",
    }

    file_schema = schemas["File"]
    assert file_schema["required"] == ["url"]
    assert {key: prop["type"] for key, prop in file_schema["properties"].items()} == {
        "url": "string",
        "content_type": "string",
        "file_name": "string",
        "file_size": "integer",
        "file_data": "string",
    }

    assert schemas["CancelStatus"]["properties"]["status"]["enum"] == [
        "CANCELLATION_REQUESTED",
        "ALREADY_COMPLETED",
        "NOT_FOUND",
    ]
    assert schemas["ValidationError"]["required"] == ["loc", "msg", "type"]
    validation_error = validator_for(doc, "HTTPValidationError")
    validation_error.validate(
        {
            "detail": [
                {
                    "loc": ["body", "image_urls", 0],
                    "msg": "Input should be '16:9' or '9:16'",
                    "type": "literal_error",
                    "url": "https://docs.fal.ai/errors/#literal_error",
                    "ctx": {"expected": "'16:9' or '9:16'"},
                    "input": "4:3",
                }
            ]
        }
    )

    output = schemas[out_name]
    assert output["type"] == "object"
    assert output["required"] == ["video"]
    assert schema_name(output["properties"]["video"]) == "File"
    output_validator = validator_for(doc, out_name)
    output_validator.validate({"video": {"url": "https://v3.fal.media/files/x/output.mp4", "file_size": 1}})
    assert not output_validator.is_valid({"video": {"content_type": "video/mp4"}})


@documents
def test_input_schema_style(name: str) -> None:
    doc = DOCUMENTS[name]
    schema = input_schema(doc)
    properties: dict[str, dict[str, Any]] = schema["properties"]
    assert schema["type"] == "object"
    assert schema["title"] == input_schema_name(doc)
    assert "additionalProperties" not in schema
    assert schema["x-fal-order-properties"] == list(properties)
    assert set(schema["required"]) <= set(properties)
    assert "prompt" in schema["required"]
    for key, prop in properties.items():
        assert prop["title"] == " ".join(part.capitalize() for part in key.split("_")), key
        assert declared_type(prop) in {"string", "boolean", "integer", "array"}, key
        if "anyOf" in prop:  # only optional fields without a default are nullable (pydantic's `T | None = None`)
            assert key not in schema["required"] and "default" not in prop, key
        assert isinstance(prop["description"], str), key
        assert prop["description"], key
        if declared_type(prop) == "array":
            assert prop["items"] == {"type": "string"}, key
        if "enum" in prop:
            assert declared_type(prop) == "string", key
            assert all(isinstance(value, str) for value in prop["enum"]), key
        if "default" in prop:
            assert Draft7Validator(prop).is_valid(prop["default"]), key
        for example in prop.get("examples", []):
            assert Draft7Validator(prop).is_valid(example), key


@documents
def test_submit_example_satisfies_input_schema(name: str) -> None:
    doc = DOCUMENTS[name]
    example = submit_operation(doc)["requestBody"]["content"]["application/json"]["example"]
    validator = validator_for(doc, input_schema_name(doc))
    validator.validate(example)
    assert set(example) <= set(input_schema(doc)["properties"])
    # The schema is not a blank cheque: a missing prompt is refused.
    assert not validator.is_valid({key: value for key, value in example.items() if key != "prompt"})


@pytest.mark.parametrize("eid", sorted(SEEDS))
def test_seed_endpoints_match_their_seeds(eid: str) -> None:
    expected = SEEDS[eid]
    doc = BY_ENDPOINT[eid]
    schema = input_schema(doc)
    properties: dict[str, dict[str, Any]] = schema["properties"]
    assert list(properties) == expected["order"]
    assert schema["x-fal-order-properties"] == expected["order"]
    assert set(expected["from_types"]) <= set(expected["order"])
    assert schema["required"] == expected["required"]
    enums = {key: prop["enum"] for key, prop in properties.items() if "enum" in prop}
    assert enums == expected["enums"]
    defaults = {key: prop["default"] for key, prop in properties.items() if "default" in prop}
    assert defaults == expected["defaults"]
    for key, type_ in expected["types"].items():
        assert declared_type(properties[key]) == type_, key
    for key, description in SEED_DESCRIPTIONS.get(eid, {}).items():
        assert properties[key]["description"] == description, key
    example = submit_operation(doc)["requestBody"]["content"]["application/json"]["example"]
    assert example == SEED_EXAMPLES[eid]


def test_veo3_fast_image_to_video_mirrors_veo3_image_to_video() -> None:
    fast = input_schema(BY_ENDPOINT["fal-ai/veo3/fast/image-to-video"])
    standard = input_schema(BY_ENDPOINT["fal-ai/veo3/image-to-video"])
    assert fast["properties"] == standard["properties"]
    assert fast["required"] == standard["required"]
    assert fast["x-fal-order-properties"] == standard["x-fal-order-properties"]


@pytest.mark.parametrize("eid", sorted(CATALOGUE))
def test_catalogue_endpoints_follow_the_catalogue(eid: str) -> None:
    aspect, resolutions, durations, auto_fix, has_safety = CATALOGUE[eid]
    schema = input_schema(BY_ENDPOINT[eid])
    properties: dict[str, dict[str, Any]] = schema["properties"]
    assert schema["required"] == REQUIRED[eid]
    assert properties["aspect_ratio"]["enum"] == aspect
    assert properties["aspect_ratio"]["default"] == ("auto" if "auto" in aspect else "16:9")
    assert properties["duration"]["enum"] == durations
    assert properties["duration"]["default"] == (
        "5s" if eid == "fal-ai/veo2" else "7s" if durations == ["7s"] else "8s"
    )
    assert properties["auto_fix"]["type"] == "boolean"
    assert properties["auto_fix"]["default"] is auto_fix
    assert properties["negative_prompt"]["anyOf"] == [{"type": "string"}, NULL]
    assert properties["seed"]["anyOf"] == [{"type": "integer"}, NULL]
    if resolutions is None:
        assert "resolution" not in properties
        assert "generate_audio" not in properties
        assert properties["enhance_prompt"]["default"] is True
    else:
        assert properties["resolution"]["enum"] == resolutions
        assert properties["resolution"]["default"] == "720p"
        assert properties["generate_audio"]["default"] is True
    if has_safety:
        assert properties["safety_tolerance"]["enum"] == ["1", "2", "3", "4", "5", "6"]
        assert properties["safety_tolerance"]["default"] == "4"
    else:
        assert "safety_tolerance" not in properties
    for key in ("image_url", "first_frame_url", "last_frame_url", "video_url"):
        if key in properties:
            assert properties[key]["type"] == "string"
    if "image_url" in properties:
        assert (
            properties["image_url"]["description"]
            == SEED_DESCRIPTIONS["fal-ai/veo3.1/fast/image-to-video"]["image_url"]
        )


@documents
def test_submit_links_to_status_stream_result_and_cancel_by_request_id(name: str) -> None:
    doc = DOCUMENTS[name]
    eid = endpoint_id(doc)
    links = doc["paths"][f"/{eid}"]["post"]["responses"]["200"]["links"]
    assert {link["operationId"]: link["parameters"] for link in links.values()} == {
        operation: {"request_id": "$response.body#/request_id"} for operation in QUEUE_OPERATIONS[1:]
    }
    result_links = doc["paths"][f"/{eid}/requests/{{request_id}}"]["get"]["responses"]["200"]["links"]
    assert [(link["operationId"], link["parameters"]) for link in result_links.values()] == [
        ("downloadFile", {"file_name": "$response.body#/video/file_name"})
    ]


@documents
def test_every_queue_answer_declares_x_fal_request_id(name: str) -> None:
    doc = DOCUMENTS[name]
    for _, _, operation in iter_operations(doc):
        if operation["operationId"] not in QUEUE_OPERATIONS:
            continue
        for code, response in operation["responses"].items():
            header = resolve(doc, resolve(doc, response)["headers"]["x-fal-request-id"])
            assert (header["required"], header["schema"]) == (True, {"type": "string"}), (
                operation["operationId"],
                code,
            )
        assert "401" in operation["responses"], operation["operationId"]


@documents
def test_status_stream_events_carry_a_queue_status(name: str) -> None:
    event = DOCUMENTS[name]["components"]["schemas"]["QueueStatusEvent"]
    assert event["required"] == ["data"]
    data = event["properties"]["data"]
    assert (data["type"], data["contentMediaType"]) == ("string", "application/json")
    assert schema_name(data["contentSchema"]) == "QueueStatus"


@documents
def test_media_is_declared_as_video_mp4_on_the_emulators_media_host(name: str) -> None:
    item = DOCUMENTS[name]["paths"]["/files/{file_name}"]
    assert item["x-emulator-only"] is True
    operation = item["get"]
    assert operation["security"] == []
    assert set(operation["responses"]) == {"200", "206", "304", "404", "416"}
    for code in ("200", "206"):
        assert operation["responses"][code]["content"] == {
            "video/mp4": {"schema": {"type": "string", "format": "binary"}}
        }
