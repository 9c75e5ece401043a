"""A render job: everything that decides a rendered MP4's bytes, its content key, and the worker that makes it.

    job = plan(endpoint, arguments, uploads.read_url)   # None: no readable input (the fixture clip answers)
    job.name                                            # "3f0c…e1.mp4": the key's first 128 bits
    render_file(job, "/state/renders/3f0c…e1.mp4", stop)  # -> (file_size, sha256), on a render thread

The key is a SHA-256 over the renderer's version, the PyAV, FFmpeg and Pillow versions, the encoder
settings, the output (width, height, frames, audio), the kind, the camera move and the SHA-256 of each
input file, so equal keys mean byte-identical files and a cached file can answer any request with that key.

Which inputs are read (fal model pages, input fields): `image_url` (image-to-video), `first_frame_url`
and `last_frame_url` (first-last-frame-to-video), `image_urls` (reference-to-video), `video_url`
(extend-video: https://fal.ai/models/fal-ai/veo3.1/extend-video). Only `data:` URIs and files uploaded to
this emulator are read; any other URL is never fetched, and such a request gets a fixture clip.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import av
import PIL
from PIL import Image

from fal_emulator.catalog import Endpoint
from fal_emulator.inputs import decode_data_uri
from fal_emulator.render import encode, timeline
from fal_emulator.render.picture import MOTIONS, Planes, fit, frame_count, load_image, motion_named
from fal_emulator.video import FPS, ClipSpec, clip_for

RENDER_VERSION = 1  # bump whenever the pictures change for the same inputs
KEY_HEX = 32  # file names carry 128 bits of the key
MAX_VIDEO_BYTES = 256 * 1024 * 1024
MAX_INPUT_SECONDS = 30.0  # extend-video: seconds of the input video kept (the runner refuses > 8 s: limits.py)

# A rendered file's modification time (its `Last-Modified`) is the wall-clock second it was finished, less
# this: uvicorn's `Date` header is refreshed once a second, so it may lag the clock by that much.
DATE_LAG_SECONDS = 2
ORIENTATION = 0x0112  # the EXIF tag
Kind = Literal["image", "first_last", "references", "extend"]
Reader = Callable[[str], "tuple[str, bytes] | None"]


@dataclass(frozen=True)
class RenderJob:
    """One clip to render. `images` are the input files as sent (PNG, JPEG, …); `video` is extend-video's input.

    `frames` is the clip's length in frames at 24 fps (`spec.duration` seconds, plus the input video's
    frames for `extend`, `input_frames` of them).
    """

    kind: Kind
    spec: ClipSpec
    motion: str
    images: tuple[bytes, ...] = ()
    video: bytes | None = None
    input_frames: int = 0

    @property
    def frames(self) -> int:
        return self.spec.duration * FPS + self.input_frames

    @functools.cached_property
    def key(self) -> str:
        """The SHA-256 (hex) of everything that decides the output's bytes."""
        header = {
            "renderer": RENDER_VERSION,
            "av": av.__version__,
            "ffmpeg": {name: list(version) for name, version in sorted(av.library_versions.items())},
            "pillow": PIL.__version__,
            "x264": encode.X264_OPTIONS,
            "mp4": encode.CONTAINER_OPTIONS,
            "kind": self.kind,
            "size": [self.spec.width, self.spec.height],
            "frames": self.frames,
            "input_frames": self.input_frames,
            "audio": self.spec.audio,
            "motion": self.motion,
        }
        digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
        for data in (*self.images, *([self.video] if self.video is not None else [])):
            digest.update(hashlib.sha256(data).digest())
        return digest.hexdigest()

    @property
    def name(self) -> str:
        """The output's file name: `{128 bits of the key}.mp4`."""
        return f"{self.key[:KEY_HEX]}.mp4"


def is_render_name(name: str) -> bool:
    """True for a file name `RenderJob.name` can produce (32 lower-case hex digits, `.mp4`)."""
    stem, dot, ext = name.partition(".")
    return dot == "." and ext == "mp4" and len(stem) == KEY_HEX and all(c in "0123456789abcdef" for c in stem)


# ------------------------------------------------------------------------------------------ planning


def read_input(url: object, reader: Reader | None) -> bytes | None:
    """The bytes of an input URL the emulator may read: a `data:` URI, or an upload (through `reader`)."""
    if not isinstance(url, str):
        return None
    decoded = decode_data_uri(url) if url.startswith("data:") else (reader(url) if reader else None)
    return decoded[1] if decoded else None


def choose_motion(arguments: Mapping[str, Any]) -> str:
    """The camera move for a request: from its `seed` when given, else from its prompt (deterministic)."""
    seed = arguments.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return motion_named(seed)
    prompt = str(arguments.get("prompt", ""))
    return motion_named(int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big"))


def _image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an image as shown (EXIF orientation applied), read from its header only."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        turned = image.getexif().get(ORIENTATION) in {5, 6, 7, 8}
    return (height, width) if turned else (width, height)


def plan(endpoint: Endpoint, arguments: Mapping[str, Any], reader: Reader | None = None) -> RenderJob | None:
    """The render job for a validated request, or None when it has no input the emulator can read.

    Raises nothing for unreadable inputs (the request then gets a fixture clip); Pillow errors for an image
    that passed the submit checks but cannot be decoded propagate (a caller falls back to the fixture).
    """
    fields = endpoint.properties
    motion = choose_motion(arguments)
    if "video_url" in fields:
        video = read_input(arguments.get("video_url"), reader)
        probe = encode.probe_video(video) if video is not None and len(video) <= MAX_VIDEO_BYTES else None
        if video is None or probe is None:
            return None
        width, height, seconds = probe
        spec = clip_for(endpoint, arguments, (width, height))
        return RenderJob("extend", spec, motion, video=video,
                         input_frames=frame_count(min(seconds, MAX_INPUT_SECONDS), FPS))  # fmt: skip
    if "first_frame_url" in fields:
        first = read_input(arguments.get("first_frame_url"), reader)
        last = read_input(arguments.get("last_frame_url"), reader)
        if first is None:
            return None
        spec = clip_for(endpoint, arguments, _image_size(first))
        if last is None:  # the last frame is a URL the emulator does not fetch: the first frame, moving
            return RenderJob("image", spec, motion, images=(first,))
        return RenderJob("first_last", spec, motion, images=(first, last))
    if "image_urls" in fields:
        urls = arguments.get("image_urls")
        found = [read_input(url, reader) for url in urls] if isinstance(urls, list) else []
        references = tuple(data for data in found if data is not None)
        if not references:
            return None
        return RenderJob("references", clip_for(endpoint, arguments, _image_size(references[0])), motion, references)
    if "image_url" in fields:
        image = read_input(arguments.get("image_url"), reader)
        if image is None:
            return None
        return RenderJob("image", clip_for(endpoint, arguments, _image_size(image)), motion, images=(image,))
    return None


# ------------------------------------------------------------------------------------------ rendering


def _pictures(images: Sequence[bytes], size: tuple[int, int]) -> list[Planes]:
    return [Planes.from_rgb(fit(load_image(data), size)) for data in images]


def frames_of(job: RenderJob) -> Iterator[Planes]:
    """The job's frames, in order (`job.frames` of them)."""
    size = (job.spec.width, job.spec.height)
    motion = MOTIONS[job.motion]
    if job.kind == "extend":
        assert job.video is not None
        return timeline.extended(job.video, size, job.input_frames, motion, job.frames)
    pictures = _pictures(job.images, size)
    if job.kind == "first_last":
        return timeline.first_to_last(pictures[0], pictures[1], motion, job.frames)
    if job.kind == "references":
        return timeline.through_references(pictures, motion, job.frames)
    return timeline.image_move(pictures[0], motion, job.frames)


class Cancelled(Exception):
    """A render stopped before its file was written (its request was cancelled, `reset`, server shutdown)."""


class Stop:
    """The switch that stops one render: checked before every frame and once more, under a lock, before the
    finished file is renamed into place, so after `stop()` returns no file of that render ever appears."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = False

    def stop(self) -> None:
        with self._lock:
            self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def check(self) -> None:
        """Raises Cancelled once stopped."""
        if self._stopped:
            raise Cancelled("the render was stopped")

    def frames(self, frames: Iterator[Planes]) -> Iterator[Planes]:
        """`frames`, ending with Cancelled as soon as the render is stopped (no frame is made after that)."""
        for planes in frames:
            self.check()
            yield planes
            self.check()

    def commit(self, partial: Path, target: Path) -> None:
        """Rename `partial` to `target` unless stopped (then raises Cancelled)."""
        with self._lock:
            self.check()
            os.replace(partial, target)


def render_file(job: RenderJob, path: str, stop: Stop | None = None) -> tuple[int, str]:
    """Render `job` into `path` (written beside it, then renamed: readers never see half a file).

    Returns (file size in bytes, SHA-256 hex of the file). Runs on a render thread. The file's modification
    time is the wall-clock second it was finished less DATE_LAG_SECONDS (its `Last-Modified`, never later
    than a response's `Date`). Raises Cancelled when `stop` is stopped first (nothing is left on disk), and
    what PyAV or Pillow raise for inputs they cannot decode.
    """
    stop = stop or Stop()
    target = Path(path)
    partial = target.with_name(f"{target.name}.part-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        frames = stop.frames(frames_of(job))
        encode.write_mp4(partial, (job.spec.width, job.spec.height), frames, job.frames, job.spec.audio)
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        size = partial.stat().st_size
        now = time.time()
        os.utime(partial, (now, math.floor(now) - DATE_LAG_SECONDS))
        stop.commit(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return size, digest
