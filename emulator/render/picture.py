"""Pictures for rendered clips: the input image fitted as Veo fits it, held as Y'CbCr planes, moved by a camera.

    image = load_image(png_bytes)                       # RGB, upright (EXIF orientation applied)
    planes = Planes.from_rgb(fit(image, (1280, 720)))   # BT.709 limited-range 4:2:0, three Pillow "L" images
    frame = planes.seen_through(MOTIONS["push-in"].box(0.5, 1280, 720))

Veo's image-to-video "crops the image to fit" the output aspect ratio (fal model pages, `aspect_ratio`:
"auto" follows the image; Google's Veo docs: the image is center-cropped). The emulator crops the
centre to the output aspect, then scales to the output size (Lanczos); the anchor (centre) and the
filter are inferred (DIVERGENCES.md). Motion happens inside that fitted frame: the camera pushes in and
drifts, so every frame shows only the user's picture, never a border.

Colour: BT.709 limited range, converted by Pillow's matrix convert, as `fixtures/generate.py` does
(deterministic on every machine: no swscale in the encoder's path).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image, ImageOps

Box = tuple[float, float, float, float]  # left, top, right, bottom in pixels (floats: sub-pixel motion)

# BT.709 limited-range RGB -> Y'CbCr, as Pillow `convert("L", matrix)` rows (R, G, B, offset); Pillow truncates,
# so each offset carries +0.5 to round.
Y_MATRIX = (0.2126 * 219 / 255, 0.7152 * 219 / 255, 0.0722 * 219 / 255, 16.5)
CB_MATRIX = (-0.2126 / 1.8556 * 224 / 255, -0.7152 / 1.8556 * 224 / 255, 0.5 * 224 / 255, 128.5)
CR_MATRIX = (0.5 * 224 / 255, -0.7152 / 1.5748 * 224 / 255, -0.0722 / 1.5748 * 224 / 255, 128.5)

SIXTEEN_BIT_GREY = ("I", "I;16", "I;16L", "I;16B", "I;16N")  # how Pillow opens a 16-bit greyscale PNG
FIT_FILTER = Image.Resampling.LANCZOS
MOVE_FILTER = Image.Resampling.BILINEAR  # per frame: a few percent of zoom, where bilinear is enough and fast


def load_image(data: bytes) -> Image.Image:
    """An input image file (PNG, JPEG, WebP, GIF: its first frame) as upright RGB.

    EXIF orientation is applied, as a browser shows the photo; transparency is composited on black. Any
    mode Pillow reads becomes RGB: palette, grey with alpha, CMYK, and 16-bit grey (a PNG's `I;16`, scaled
    from 0..65535 to 0..255, where a plain convert would clip it to white).
    Raises PIL.UnidentifiedImageError or OSError for bytes Pillow cannot read.
    """
    with Image.open(io.BytesIO(data)) as opened:
        opened.seek(0)
        image = ImageOps.exif_transpose(opened)
        if image.mode in SIXTEEN_BIT_GREY:
            image = image.convert("I").point(lambda value: value / 256).convert("L")
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
            return Image.alpha_composite(black, rgba).convert("RGB")
        return image.convert("RGB")


def crop_box(size: tuple[int, int], out: tuple[int, int]) -> Box:
    """The centred region of a `size` picture with the aspect ratio of `out` (what Veo keeps)."""
    width, height = size
    wanted = out[0] / out[1]
    if width / height > wanted:  # wider than the output: cut the sides
        cut = width - height * wanted
        return (cut / 2, 0.0, width - cut / 2, float(height))
    cut = height - width / wanted
    return (0.0, cut / 2, float(width), height - cut / 2)


def fit(image: Image.Image, out: tuple[int, int]) -> Image.Image:
    """`image` cropped to the output aspect around its centre, then scaled to `out` (width, height)."""
    if image.size == out:
        return image
    return image.resize(out, FIT_FILTER, box=crop_box(image.size, out), reducing_gap=3.0)


def _scaled(box: Box, factor: float) -> Box:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)


@dataclass(frozen=True)
class Planes:
    """One picture as BT.709 limited-range Y'CbCr 4:2:0: a full-size luma plane and two half-size chroma planes."""

    y: Image.Image
    cb: Image.Image
    cr: Image.Image

    @property
    def size(self) -> tuple[int, int]:
        return self.y.size

    @classmethod
    def from_rgb(cls, image: Image.Image) -> Planes:
        """The planes of an RGB image with even width and height (chroma: the mean of each 2x2 block)."""
        half = image.reduce(2)
        return cls(image.convert("L", Y_MATRIX), half.convert("L", CB_MATRIX), half.convert("L", CR_MATRIX))

    def fitted(self, out: tuple[int, int]) -> Planes:
        """These planes cropped and scaled as `fit` does an RGB image (for decoded video frames)."""
        if self.size == out:
            return self
        box = crop_box(self.size, out)
        half = (out[0] // 2, out[1] // 2)
        chroma_box = _scaled(box, self.cb.size[0] / self.size[0])
        return Planes(
            self.y.resize(out, FIT_FILTER, box=box),
            self.cb.resize(half, FIT_FILTER, box=chroma_box),
            self.cr.resize(half, FIT_FILTER, box=chroma_box),
        )

    def seen_through(self, box: Box) -> Planes:
        """The part of the picture inside `box` (pixels), scaled back to full size: one frame of a camera move.

        The full box gives these very planes, so a move that starts at rest starts on the picture itself.
        """
        width, height = self.size
        if box == (0, 0, width, height):
            return self
        half = (width // 2, height // 2)
        chroma_box = _scaled(box, 0.5)
        return Planes(
            self.y.resize(self.size, MOVE_FILTER, box=box),
            self.cb.resize(half, MOVE_FILTER, box=chroma_box),
            self.cr.resize(half, MOVE_FILTER, box=chroma_box),
        )

    def blend(self, other: Planes, alpha: float) -> Planes:
        """A cross-fade: `self` at alpha 0, exactly `other` at alpha 1."""
        if alpha <= 0.0:
            return self
        if alpha >= 1.0:
            return other
        return Planes(
            Image.blend(self.y, other.y, alpha),
            Image.blend(self.cb, other.cb, alpha),
            Image.blend(self.cr, other.cr, alpha),
        )


def ease(t: float) -> float:
    """Smoothstep on [0, 1]: a move that starts and ends at rest."""
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class Motion:
    """A slow camera move inside the fitted frame: push in by `zoom` (a fraction of the frame) while the
    view's centre drifts towards `drift` (-1..1 of the room the zoom leaves, on each axis)."""

    name: str
    zoom: float
    drift: tuple[float, float] = (0.0, 0.0)

    def box(self, t: float, width: int, height: int) -> Box:
        """Where the camera looks at `t` (0 = start, at rest on the whole frame; 1 = end of the move)."""
        if t <= 0.0:
            return (0, 0, width, height)
        scale = 1.0 - self.zoom * ease(t)
        seen_w, seen_h = width * scale, height * scale
        centre_x = width / 2 + self.drift[0] * (width - seen_w) / 2
        centre_y = height / 2 + self.drift[1] * (height - seen_h) / 2
        return (centre_x - seen_w / 2, centre_y - seen_h / 2, centre_x + seen_w / 2, centre_y + seen_h / 2)


_MOVES = (
    Motion("push-in", 0.10),
    Motion("pan-left", 0.12, (-1.0, 0.0)),
    Motion("pan-right", 0.12, (1.0, 0.0)),
    Motion("tilt-up", 0.12, (0.0, -1.0)),
    Motion("tilt-down", 0.12, (0.0, 1.0)),
    Motion("drift-up-left", 0.10, (-0.7, -0.7)),
    Motion("drift-down-right", 0.10, (0.7, 0.7)),
)
MOTIONS = {motion.name: motion for motion in _MOVES}


def motion_named(index: int) -> str:
    """The name of motion number `index` (any integer; taken modulo the number of motions)."""
    return _MOVES[index % len(_MOVES)].name


def frame_count(seconds: float, fps: int) -> int:
    return max(1, math.floor(seconds * fps + 0.5))
