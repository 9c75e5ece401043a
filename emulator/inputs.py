"""Reading input files without the network: `data:` URIs are decoded, other URLs are never fetched.

fal accepts "your own URL or a Base64 data URI" for every file field (fal model pages, section
"Files"). The emulator is offline by design (no SSRF), so it reads only what is inline: a `data:`
URI, decoded by the standard library's RFC 2397 handler, and an image's size, read by Pillow.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from PIL import Image, UnidentifiedImageError

# Input fields that carry the image whose shape `aspect_ratio: auto` follows, in order of preference.
IMAGE_FIELDS = ("image_url", "first_frame_url", "image_urls")

_opener = urllib.request.OpenerDirector()
_opener.add_handler(urllib.request.DataHandler())


def decode_data_uri(uri: str) -> tuple[str, bytes] | None:
    """`data:image/png;base64,...` -> ("image/png", bytes); None for any other URL or a malformed URI."""
    if not uri.startswith("data:"):
        return None
    try:
        with _opener.open(uri) as response:
            return str(response.headers.get_content_type()), response.read()
    except (ValueError, urllib.error.URLError, OSError):
        return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels of an encoded image, or None when Pillow cannot identify it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def input_image_size(arguments: Mapping[str, Any]) -> tuple[int, int] | None:
    """The size of the request's input image, when it is a readable `data:` URI; else None."""
    for name in IMAGE_FIELDS:
        value = arguments.get(name)
        url = value[0] if isinstance(value, list) and value else value
        if isinstance(url, str):
            decoded = decode_data_uri(url)
            return image_size(decoded[1]) if decoded else None
    return None
