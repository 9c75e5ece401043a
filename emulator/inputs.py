"""Reading input files without the network: `data:` URIs are decoded, other URLs are never fetched.

fal accepts "your own URL or a Base64 data URI" for every file field (fal model pages, section
"Files"), and rejects files it cannot use with model errors (https://fal.ai/docs/documentation/
model-apis/errors.md): `file_too_large` (8 MB for Veo inputs: "Input images up to 8MB in size"),
`image_load_error`, `unsupported_image_format`, `image_too_large`. The emulator is offline by design
(no SSRF), so it checks only what is inline: `data:` URIs, decoded by the standard library's
RFC 2397 handler and identified by Pillow.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from PIL import Image, UnidentifiedImageError

from fal_emulator.errors import ModelError
from fal_emulator.failures import FAILURES

# Input fields that carry images, in order of preference for `aspect_ratio: auto`.
IMAGE_FIELDS = ("image_url", "first_frame_url", "image_urls", "last_frame_url")
MAX_FILE_BYTES = 8 * 1024 * 1024
# Pillow format name -> the name fal's `supported_formats` lists.
SUPPORTED_IMAGE_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}

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


def _image_urls(arguments: Mapping[str, Any]) -> Iterator[tuple[list[str | int], str]]:
    for name in IMAGE_FIELDS:
        value = arguments.get(name)
        if isinstance(value, str):
            yield ["body", name], value
        elif isinstance(value, list):
            for index, url in enumerate(value):
                if isinstance(url, str):
                    yield ["body", name, index], url


def _check_image(loc: list[str | int], data: bytes | None) -> tuple[int, int]:
    """The size of an input image. Raises ModelError naming `loc` when fal would refuse it."""

    def refuse(name: str) -> ModelError:
        error = FAILURES[name].error()
        assert isinstance(error, ModelError)
        error.items[0]["loc"] = loc
        return error

    if data is None:
        raise refuse("image_load_error")
    if len(data) > MAX_FILE_BYTES:
        raise refuse("file_too_large")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in SUPPORTED_IMAGE_FORMATS:
                raise refuse("unsupported_image_format")
            return image.size
    except Image.DecompressionBombError:
        raise refuse("image_too_large") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise refuse("image_load_error") from None


Reader = Callable[[str], "tuple[str, bytes] | None"]


def check_input_images(arguments: Mapping[str, Any], read_upload: Reader | None = None) -> tuple[int, int] | None:
    """Check every input image the emulator can read; return the size (width, height) `auto` follows.

    Readable are `data:` URIs and, through `read_upload`, files uploaded to this emulator. Raises
    ModelError (422) for the first such image fal would refuse. Other URLs are never read.
    """
    first: tuple[int, int] | None = None
    for index, (loc, uri) in enumerate(_image_urls(arguments)):
        if uri.startswith("data:"):
            decoded = decode_data_uri(uri)
        elif read_upload is not None and (decoded := read_upload(uri)) is not None:
            pass
        else:
            continue
        size = _check_image(loc, decoded[1] if decoded else None)
        if index == 0:
            first = size
    return first
