from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from fal_emulator.catalog import Endpoint, load_catalog
from fal_emulator.inputs import check_input_images, decode_data_uri
from fal_emulator.video import ClipSpec, clip_for, clip_specs, dimensions, parse_duration

CATALOG = load_catalog()


def endpoint(endpoint_id: str) -> Endpoint:
    found = CATALOG.get(endpoint_id)
    assert found is not None
    return found


def png_data_uri(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    ("resolution", "aspect_ratio", "size"),
    [
        ("720p", "16:9", (1280, 720)),
        ("720p", "9:16", (720, 1280)),
        ("1080p", "16:9", (1920, 1080)),
        ("1080p", "1:1", (1080, 1080)),
        ("4k", "9:16", (2160, 3840)),
    ],
)
def test_dimensions_follow_resolution_and_aspect_ratio(
    resolution: str, aspect_ratio: str, size: tuple[int, int]
) -> None:
    assert dimensions(resolution, aspect_ratio) == size


def test_duration_must_be_seconds_with_an_s() -> None:
    assert parse_duration("8s") == 8
    with pytest.raises(ValueError):
        parse_duration("8")


def test_seed_example_of_veo3_image_to_video_without_readable_image_is_16_9() -> None:
    spec = clip_for(endpoint("fal-ai/veo3/image-to-video"), endpoint("fal-ai/veo3/image-to-video").example_input, None)
    assert spec == ClipSpec(1280, 720, 8, True)


def test_auto_follows_a_portrait_data_uri_image() -> None:
    arguments = {"prompt": "p", "image_url": png_data_uri(90, 160)}
    size = check_input_images(arguments)
    assert size == (90, 160)
    assert clip_for(endpoint("fal-ai/veo3.1/fast/image-to-video"), arguments, size) == ClipSpec(720, 1280, 8, True)


def test_auto_picks_square_when_the_endpoint_offers_it() -> None:
    arguments = {"prompt": "p", "image_url": png_data_uri(100, 95), "resolution": "1080p"}
    spec = clip_for(endpoint("fal-ai/veo3.1/fast/image-to-video"), arguments, check_input_images(arguments))
    assert (spec.width, spec.height) == (1080, 1080)


def test_auto_prefer_portrait_without_an_image_is_portrait_and_veo2_has_no_audio() -> None:
    arguments = {"prompt": "p", "image_url": "https://example.com/a.png", "aspect_ratio": "auto_prefer_portrait"}
    assert clip_for(endpoint("fal-ai/veo2/image-to-video"), arguments, None) == ClipSpec(720, 1280, 5, False)


def test_generate_audio_false_means_a_silent_clip() -> None:
    arguments = {"prompt": "p", "image_urls": ["https://x/a.png"], "generate_audio": False, "resolution": "1080p"}
    assert clip_for(endpoint("fal-ai/veo3.1/reference-to-video"), arguments, None) == ClipSpec(1920, 1080, 8, False)


def test_external_urls_are_never_read() -> None:
    assert check_input_images({"image_url": "https://storage.googleapis.com/x.png"}) is None
    assert decode_data_uri("https://storage.googleapis.com/x.png") is None


def test_clip_specs_cover_4k_only_where_the_catalogue_allows_it() -> None:
    lite = set(clip_specs(endpoint("fal-ai/veo3.1/lite")))
    full = set(clip_specs(endpoint("fal-ai/veo3.1")))
    assert all(spec.height <= 1920 and spec.width <= 1920 for spec in lite)
    assert ClipSpec(3840, 2160, 4, True) in full
