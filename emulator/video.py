"""Which clip answers a request: output dimensions, duration and audio from the request's input.

A Veo output is an H.264 MP4 at 24 fps whose size follows `resolution` x `aspect_ratio`, whose length
is the `duration` field, and which has an AAC track exactly when `generate_audio` is true. The clips
themselves are real files in `fixtures/` (see `fixtures/generate.py`); this module only names them.

Sources: fal model pages for the Veo family (https://fal.ai/models/fal-ai/veo3.1/fast/image-to-video/api:
`resolution` 720p/1080p, `aspect_ratio`, `duration` "4s"/"6s"/"8s", `generate_audio`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fal_emulator.catalog import Endpoint

FPS = 24
DEFAULT_RESOLUTION = "720p"
DEFAULT_ASPECT_RATIO = "16:9"

# Short side in pixels for each `resolution` value.
SHORT_SIDE = {"720p": 720, "1080p": 1080, "4k": 2160}
# Width:height for each concrete `aspect_ratio` value ("auto…" values are resolved from the input image).
ASPECT_RATIOS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}


@dataclass(frozen=True, order=True)
class ClipSpec:
    """One output clip: width and height in pixels, duration in whole seconds, audio track or not."""

    width: int
    height: int
    duration: int
    audio: bool

    @property
    def file_name(self) -> str:
        return f"{self.width}x{self.height}_{self.duration}s_{'audio' if self.audio else 'silent'}.mp4"


def dimensions(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height) in pixels: `("720p", "9:16")` -> `(720, 1280)`.

    Raises KeyError for a resolution or aspect ratio the emulator has no mapping for.
    """
    short = SHORT_SIDE[resolution]
    across, down = ASPECT_RATIOS[aspect_ratio]
    if across >= down:
        return short * across // down, short
    return short, short * down // across


def parse_duration(value: str) -> int:
    """`"8s"` -> 8 (seconds). Raises ValueError for anything else."""
    if not value.endswith("s") or not value[:-1].isdigit():
        raise ValueError(f"duration {value!r} is not of the form '<seconds>s'")
    return int(value[:-1])


def concrete_aspect_ratios(endpoint: Endpoint) -> list[str]:
    """The endpoint's `aspect_ratio` values that name a shape (not `auto…`)."""
    values = endpoint.enum("aspect_ratio") or [endpoint.default("aspect_ratio") or DEFAULT_ASPECT_RATIO]
    return [value for value in values if value in ASPECT_RATIOS]


def clip_specs(endpoint: Endpoint) -> Iterator[ClipSpec]:
    """Every clip a valid request to `endpoint` can ask for."""
    resolutions = endpoint.enum("resolution") or [endpoint.default("resolution") or DEFAULT_RESOLUTION]
    durations = endpoint.enum("duration") or [endpoint.default("duration")]
    audio = [True, False] if "generate_audio" in endpoint.properties else [False]
    for resolution in resolutions:
        for aspect_ratio in concrete_aspect_ratios(endpoint):
            width, height = dimensions(resolution, aspect_ratio)
            for duration in durations:
                for has_audio in audio:
                    yield ClipSpec(width, height, parse_duration(duration), has_audio)


def _nearest_aspect_ratio(candidates: list[str], image_ratio: float, prefer_portrait: bool) -> str:
    def distance(name: str) -> tuple[float, bool]:
        across, down = ASPECT_RATIOS[name]
        return abs(math.log(image_ratio * down / across)), (across >= down) == prefer_portrait

    return min(candidates, key=distance)


def resolve_aspect_ratio(endpoint: Endpoint, requested: str, image_size: tuple[int, int] | None) -> str:
    """A concrete aspect ratio for `requested`, which may be `auto` or `auto_prefer_portrait`.

    `auto` takes the endpoint's aspect ratio nearest the input image's (Veo crops the image to fit);
    with no readable image it is 16:9, and `auto_prefer_portrait` is 9:16.
    """
    if requested in ASPECT_RATIOS:
        return requested
    prefer_portrait = requested == "auto_prefer_portrait"
    candidates = concrete_aspect_ratios(endpoint)
    if image_size is None or image_size[1] == 0:
        fallback = "9:16" if prefer_portrait else DEFAULT_ASPECT_RATIO
        return fallback if fallback in candidates else candidates[0]
    return _nearest_aspect_ratio(candidates, image_size[0] / image_size[1], prefer_portrait)


def clip_for(endpoint: Endpoint, arguments: Mapping[str, Any], image_size: tuple[int, int] | None) -> ClipSpec:
    """The clip answering `arguments` (already validated) sent to `endpoint`.

    `image_size` is (width, height) in pixels of the input image when the emulator could read it.
    """

    def field(name: str, fallback: Any) -> Any:
        # Only fields the endpoint declares count: fal ignores unknown fields (pydantic's default).
        value = arguments.get(name, endpoint.default(name)) if name in endpoint.properties else None
        return fallback if value is None else value

    resolution = field("resolution", DEFAULT_RESOLUTION)
    aspect_ratio = resolve_aspect_ratio(endpoint, field("aspect_ratio", "auto"), image_size)
    width, height = dimensions(resolution, aspect_ratio)
    duration = parse_duration(field("duration", "8s"))
    audio = "generate_audio" in endpoint.properties and bool(field("generate_audio", True))
    return ClipSpec(width, height, duration, audio)
