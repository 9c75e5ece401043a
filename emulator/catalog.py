"""The endpoint catalogue, learned only from the OpenAPI documents in `openapi/`.

Each document is one fal-style per-endpoint queue OpenAPI document (the shape of
`https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=<id>`). Adding an endpoint means adding a
document: nothing here names a model.

    catalog = load_catalog()
    endpoint = catalog.get("fal-ai/veo3.1/fast/image-to-video")
    endpoint.app_id          # "fal-ai/veo3.1"
    endpoint.input_schema    # a self-contained JSON Schema (draft 2020-12 compatible)
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fal_emulator.paths import OPENAPI_DIR

JSON = dict[str, Any]

# libyaml's loader when PyYAML was built with it (about 10x faster), else the pure-Python one; both safe.
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Namespaces that shift the owner/alias split by one (fal_client `APP_NAMESPACES`, JS `ENDPOINT_NAMESPACES`).
APP_NAMESPACES = ("workflows", "comfy")


class CatalogError(ValueError):
    """An OpenAPI document in `openapi/` is not of the shape the emulator reads."""


def app_id_of(endpoint_id: str) -> str:
    """The app id of an endpoint id: its first two segments (three under a namespace).

    `fal-ai/veo3.1/fast/image-to-video` -> `fal-ai/veo3.1`. Source: fal_client 1.0.3 `AppId.from_endpoint_id`.
    """
    parts = endpoint_id.strip("/").split("/")
    keep = 3 if parts[0] in APP_NAMESPACES else 2
    return "/".join(parts[:keep])


@dataclass(frozen=True)
class Endpoint:
    """One model endpoint, as its OpenAPI document declares it."""

    endpoint_id: str
    category: str
    document: Mapping[str, Any] = field(repr=False)
    input_schema: Mapping[str, Any] = field(repr=False)
    output_schema: Mapping[str, Any] = field(repr=False)
    example_input: Mapping[str, Any] = field(repr=False)

    @functools.cached_property
    def app_id(self) -> str:
        """`app_id_of(endpoint_id)`, made once: every request of the endpoint holds this one string."""
        return app_id_of(self.endpoint_id)

    @property
    def properties(self) -> Mapping[str, Any]:
        """The input schema's `properties` (name -> JSON Schema)."""
        props: Mapping[str, Any] = self.input_schema.get("properties", {})
        return props

    def enum(self, name: str) -> list[Any] | None:
        """The enum of input field `name`, or None when the field is absent or free."""
        prop = self.properties.get(name)
        return list(prop["enum"]) if prop and "enum" in prop else None

    def default(self, name: str) -> Any:
        """The declared default of input field `name` (None when it has none)."""
        return self.properties.get(name, {}).get("default")


def _resolve(node: Any, components: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline every local `#/components/schemas/X` reference, giving a self-contained schema."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            prefix = "#/components/schemas/"
            if not ref.startswith(prefix):
                raise CatalogError(f"unsupported $ref {ref!r}: only {prefix}… references are read")
            name = ref[len(prefix) :]
            if name in seen:
                raise CatalogError(f"recursive schema {name!r}")
            if name not in components:
                raise CatalogError(f"$ref to missing schema {name!r}")
            merged = {**components[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return _resolve(merged, components, (*seen, name))
        return {key: _resolve(value, components, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, components, seen) for item in node]
    return node


def endpoint_from_document(document: Mapping[str, Any]) -> Endpoint:
    """Build an Endpoint from one parsed OpenAPI document.

    Raises CatalogError when the document lacks `info.x-fal-metadata.endpointId` or the submit and
    result operations (`POST /<id>`, `GET /<id>/requests/{request_id}`).
    """
    try:
        meta = document["info"]["x-fal-metadata"]
        endpoint_id: str = meta["endpointId"]
        components = document.get("components", {}).get("schemas", {})
        paths = document["paths"]
        submit = paths[f"/{endpoint_id}"]["post"]
        body = submit["requestBody"]["content"]["application/json"]
        result = paths[f"/{endpoint_id}/requests/{{request_id}}"]["get"]
        output = result["responses"]["200"]["content"]["application/json"]["schema"]
    except (KeyError, TypeError) as exc:
        raise CatalogError(f"not a fal queue OpenAPI document: missing {exc}") from exc
    return Endpoint(
        endpoint_id=endpoint_id,
        category=str(meta.get("category", "")),
        document=document,
        input_schema=_resolve(copy.deepcopy(body["schema"]), components),
        output_schema=_resolve(copy.deepcopy(output), components),
        example_input=copy.deepcopy(body.get("example", {})),
    )


class Catalog:
    """The endpoints known to the emulator, keyed by endpoint id."""

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self._endpoints = {endpoint.endpoint_id: endpoint for endpoint in endpoints}

    def get(self, endpoint_id: str) -> Endpoint | None:
        return self._endpoints.get(endpoint_id.strip("/"))

    def app_ids(self) -> set[str]:
        return {endpoint.app_id for endpoint in self}

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(sorted(self._endpoints.values(), key=lambda e: e.endpoint_id))

    def __len__(self) -> int:
        return len(self._endpoints)


def load_catalog(directory: Path = OPENAPI_DIR) -> Catalog:
    """Read every `*.yaml`, `*.yml` and `*.json` document in `directory` (JSON is YAML).

    Raises CatalogError naming the file when a document cannot be read.
    """
    endpoints = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in {".yaml", ".yml", ".json"}:
            continue
        try:
            document = yaml.load(path.read_text(encoding="utf-8"), Loader=SafeLoader)
            endpoints.append(endpoint_from_document(document))
        except (yaml.YAMLError, CatalogError) as exc:
            raise CatalogError(f"{path.name}: {exc}") from exc
    return Catalog(endpoints)
