"""The contracts: the endpoint documents in `openapi/` (the emulator's own catalogue), and the inputs the
kit sends to them.

    endpoints = load_contracts(["fal-ai/veo3.1/fast"])      # [] or None selects every endpoint
    cheapest_input(endpoints[0])   # {"prompt": ..., "duration": "4s", "resolution": "720p", "generate_audio": False}
    expected_video(endpoints[0], {"resolution": "1080p", "aspect_ratio": "9:16"})   # VideoExpectation(...)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fal_emulator.catalog import Endpoint, load_catalog
from fal_emulator.paths import OPENAPI_DIR

if TYPE_CHECKING:  # Hypothesis is the kit's extra; the recorder reads prices (spend.py) without it
    from hypothesis import strategies as st

JSON = dict[str, Any]
# Short side in pixels by `resolution`, and width:height by concrete `aspect_ratio` (fal's Veo pages).
SHORT_SIDE = {"720p": 720, "1080p": 1080, "4k": 2160}
SHAPES = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}
PLACEHOLDER_URL = "https://storage.googleapis.com/falserverless/example_inputs/veo3-i2v-input.png"


class UnknownEndpoint(ValueError):
    """An `--endpoint` that no document in `openapi/` declares."""


def load_contracts(selected: Sequence[str] | None = None, directory: Path = OPENAPI_DIR) -> list[Endpoint]:
    """The endpoints named in `selected` (all of them when empty), in endpoint-id order.

    Raises UnknownEndpoint naming the known ids, and fal_emulator.catalog.CatalogError for a bad document.
    """
    catalog = load_catalog(directory)
    if not selected:
        return list(catalog)
    chosen = []
    for endpoint_id in dict.fromkeys(selected):
        endpoint = catalog.get(endpoint_id)
        if endpoint is None:
            known = ", ".join(e.endpoint_id for e in catalog)
            raise UnknownEndpoint(f"no contract for endpoint {endpoint_id!r}; known: {known}")
        chosen.append(endpoint)
    return chosen


def example_input(endpoint: Endpoint) -> JSON:
    """The document's submit example (a valid input)."""
    return copy.deepcopy(dict(endpoint.example_input))


def required_input(endpoint: Endpoint) -> JSON:
    """Only the required fields, with the example's values (or a field example, or a placeholder)."""
    example = example_input(endpoint)
    values: JSON = {}
    for name in endpoint.input_schema.get("required", []):
        prop = endpoint.properties.get(name, {})
        if name in example:
            values[name] = example[name]
        elif prop.get("examples"):
            values[name] = copy.deepcopy(prop["examples"][0])
        elif prop.get("type") == "array":
            values[name] = [PLACEHOLDER_URL]
        else:
            values[name] = PLACEHOLDER_URL if name.endswith("_url") else "a calm lake at dawn"
    return values


def cheapest_input(endpoint: Endpoint) -> JSON:
    """A valid input that costs least: the shortest duration, the lowest resolution, no audio."""
    values = required_input(endpoint)
    durations = endpoint.enum("duration")
    if durations:
        values["duration"] = min(durations, key=_seconds)
    resolutions = endpoint.enum("resolution")
    if resolutions:
        values["resolution"] = min(resolutions, key=lambda value: SHORT_SIDE.get(value, 10**6))
    if "generate_audio" in endpoint.properties:
        values["generate_audio"] = False
    return values


def invalid_input(endpoint: Endpoint) -> JSON:
    """An input every fal runner rejects without generating anything: the example without its `prompt`."""
    values = example_input(endpoint)
    values.pop("prompt", None)
    return values


def input_strategy(endpoint: Endpoint) -> st.SearchStrategy[JSON]:
    """Valid inputs: the required fields, plus any subset of the enum and boolean fields."""
    from hypothesis import strategies as st

    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, prop in endpoint.properties.items():
        if "enum" in prop and name in {"duration", "resolution", "aspect_ratio"}:
            optional[name] = st.sampled_from(list(prop["enum"]))
        elif prop.get("type") == "boolean" and name == "generate_audio":
            optional[name] = st.booleans()
    required = {name: st.just(value) for name, value in required_input(endpoint).items()}
    return st.fixed_dictionaries(required, optional=optional)


@dataclass(frozen=True)
class VideoExpectation:
    """What a valid request's video must be: one of `sizes` (width, height) in pixels, `seconds` long,
    with an audio track exactly when `audio` is true."""

    sizes: frozenset[tuple[int, int]]
    seconds: int
    audio: bool


def expected_video(endpoint: Endpoint, arguments: Mapping[str, Any]) -> VideoExpectation:
    """The video `arguments` asks `endpoint` for. An `auto…` aspect ratio allows each of the endpoint's shapes."""

    def field(name: str, fallback: Any) -> Any:
        value = arguments.get(name, endpoint.default(name))
        return fallback if value is None else value

    short = SHORT_SIDE[field("resolution", "720p")]
    aspect = field("aspect_ratio", "16:9")
    shapes = [aspect] if aspect in SHAPES else [v for v in endpoint.enum("aspect_ratio") or [] if v in SHAPES]
    sizes = frozenset(_size(short, SHAPES[shape]) for shape in shapes or ["16:9"])
    audio = "generate_audio" in endpoint.properties and bool(field("generate_audio", True))
    return VideoExpectation(sizes=sizes, seconds=_seconds(field("duration", "8s")), audio=audio)


def _size(short: int, shape: tuple[int, int]) -> tuple[int, int]:
    across, down = shape
    return (short * across // down, short) if across >= down else (short, short * down // across)


def _seconds(duration: str) -> int:
    """`"8s"` -> 8. Raises ValueError for anything else."""
    if not duration.endswith("s") or not duration[:-1].isdigit():
        raise ValueError(f"duration {duration!r} is not of the form '<seconds>s'")
    return int(duration[:-1])
