"""Inline input images are checked as fal checks input files; other URLs are never read."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

import pytest
from starlette.testclient import TestClient

from fal_emulator.inputs import check_input_images
from tests.conftest import KEY, ClientFactory

ENDPOINT = "fal-ai/veo3.1/fast/image-to-video"


def data_uri(data: bytes, content_type: str = "image/png") -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one empty IDAT: small on the wire, huge when decoded."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def refusal(client: TestClient, image_url: str) -> tuple[int, Any]:
    """The result of a request with `image_url` (the runner reads the image; `client` completes at once)."""
    response = client.post(f"/{ENDPOINT}", json={"prompt": "p", "image_url": image_url}, headers=KEY)
    assert response.status_code == 200
    result = client.get(response.json()["response_url"], headers=KEY)
    return result.status_code, result.json()


@pytest.mark.parametrize(
    ("image_url", "error_type"),
    [
        ("data:image/png;base64,!!!not-base64", "image_load_error"),
        (data_uri(b"plain text, not an image", "text/plain"), "image_load_error"),
        (data_uri(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"), "image_load_error"),
        (data_uri(png_header_only(20000, 20000)), "image_too_large"),
        (data_uri(b"\x00" * (8 * 1024 * 1024 + 1), "image/png"), "file_too_large"),
    ],
    ids=["bad-base64", "text", "svg", "decompression-bomb", "over-8-mb"],
)
def test_unusable_inline_images_are_422_model_errors(
    make_client: ClientFactory, image_url: str, error_type: str
) -> None:
    status, answer = refusal(make_client(policy="instant"), image_url)
    assert status == 422
    [item] = answer["detail"]
    assert (item["loc"], item["type"]) == (["body", "image_url"], error_type)


def test_a_bmp_is_an_unsupported_image_format() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    with pytest.raises(Exception, match="Unsupported image format") as caught:
        check_input_images({"image_urls": ["https://x/a.png", data_uri(buffer.getvalue(), "image/bmp")]})
    assert caught.value.body["detail"][0]["loc"] == ["body", "image_urls", 1]  # type: ignore[attr-defined]
    assert caught.value.body["detail"][0]["ctx"]["supported_formats"] == ["jpeg", "png", "webp", "gif"]  # type: ignore[attr-defined]


def test_a_readable_inline_image_gives_its_size_for_auto() -> None:
    assert check_input_images({"image_url": data_uri(png(30, 40)), "last_frame_url": data_uri(png(9, 9))}) == (30, 40)
