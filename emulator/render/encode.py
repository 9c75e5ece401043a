"""MP4 in and out with PyAV: write planes as H.264 (+ a quiet AAC tone), read an input video's frames.

The output is what a Veo MP4 is (fal model pages): H.264 yuv420p at 24 fps, BT.709 tagged, `+faststart`
(the index first, so a `<video>` element plays it from a Range request), with an AAC track only when
asked. Bytes are deterministic for one PyAV/FFmpeg/x264 build, in any process whatever it encoded before:
bit-exact muxer and encoder flags, single-threaded x264 without its macroblock tree (`mbtree` read memory
an earlier encoder of the same process left behind: a second render's bytes differed from a fresh
process's, tests/test_render_determinism.py), no wall-clock timestamps, and a tone computed in
integer-period samples.
"""

from __future__ import annotations

import array
import io
import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from fal_emulator.render.picture import Planes
from fal_emulator.video import FPS

CONTAINER_OPTIONS = {"movflags": "+faststart", "fflags": "+bitexact"}
# `veryfast` keeps a 720p, 8 s render near 2 s of one core (benchmarks/render.py); CRF 20 keeps the
# first frame within a few levels of the input picture. `mbtree` off: see the module docstring.
X264_OPTIONS = {"preset": "veryfast", "crf": "20", "threads": "1", "mbtree": "0", "flags": "+bitexact"}
SAMPLE_RATE = 48_000
AUDIO_LAYOUT = "mono"
AUDIO_BIT_RATE = 32_000
AUDIO_FRAME = 1024  # AAC frame size in samples
# A soft C-major chord rounded to whole hertz, so one second of samples repeats exactly.
CHORD_HZ = (262, 330, 392)
CHORD_AMPLITUDE = 0.045  # per note: peaks near -17 dBFS
FADE_SAMPLES = SAMPLE_RATE // 4

_one_second: array.array[float] | None = None


def tone(samples: int) -> array.array[float]:
    """`samples` mono float samples of the chord at 48 kHz, faded in and out (quantised to 16 bits)."""
    global _one_second
    if _one_second is None:
        second = array.array("f")
        for n in range(SAMPLE_RATE):
            value = sum(math.sin(2 * math.pi * hz * n / SAMPLE_RATE) for hz in CHORD_HZ) * CHORD_AMPLITUDE
            second.append(round(value * 32767) / 32768)
        _one_second = second
    repeats = -(-samples // SAMPLE_RATE)
    out = (_one_second * repeats)[:samples]
    fade = min(FADE_SAMPLES, samples // 2)
    for n in range(fade):
        gain = n / fade
        out[n] = round(out[n] * gain * 32767) / 32768
        out[samples - 1 - n] = round(out[samples - 1 - n] * gain * 32767) / 32768
    return out


def _fill(frame: VideoFrame, planes: Planes) -> None:
    for plane, image in zip(frame.planes, (planes.y, planes.cb, planes.cr), strict=True):
        width, height = image.size
        data = image.tobytes()
        if plane.line_size != width:  # rows padded for alignment
            pad = bytes(plane.line_size - width)
            data = b"".join(data[row * width : (row + 1) * width] + pad for row in range(height))
        plane.update(data)


def add_video_stream(container: OutputContainer, size: tuple[int, int], options: dict[str, str]) -> VideoStream:
    """An H.264 stream of `size` at 24 fps in `container`: one thread, BT.709 limited range (what Veo's MP4s
    declare). The placeholder clips (fixtures/generate.py) and the renders share it."""
    video = container.add_stream("libx264", rate=FPS, options=options)
    video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
    video.time_base = Fraction(1, FPS)
    codec = video.codec_context
    codec.thread_count = 1
    codec.color_range = 1  # MPEG (limited)
    codec.color_primaries = 1  # BT.709
    codec.color_trc = 1  # BT.709
    codec.colorspace = 1  # BT.709
    return video


def add_audio_stream(container: OutputContainer) -> AudioStream:
    """A mono AAC stream at 48 kHz, 32 kbit/s, in `container` (bit-exact, so the bytes repeat)."""
    sound = container.add_stream("aac", rate=SAMPLE_RATE, options={"flags": "+bitexact"})
    sound.layout = AUDIO_LAYOUT
    sound.bit_rate = AUDIO_BIT_RATE
    sound.time_base = Fraction(1, SAMPLE_RATE)
    return sound


def mux_audio(container: OutputContainer, sound: AudioStream, samples: array.array[float]) -> None:
    """Encode mono float `samples` into `sound` (an `add_audio_stream`), one AAC frame at a time, then flush."""
    for start in range(0, len(samples), AUDIO_FRAME):
        chunk = samples[start : start + AUDIO_FRAME]
        piece = av.AudioFrame(format="fltp", layout=AUDIO_LAYOUT, samples=len(chunk))
        piece.planes[0].update(chunk.tobytes())
        piece.sample_rate = SAMPLE_RATE
        piece.pts = start
        piece.time_base = Fraction(1, SAMPLE_RATE)
        container.mux(sound.encode(piece))
    container.mux(sound.encode(None))


def write_mp4(path: Path, size: tuple[int, int], frames: Iterable[Planes], frame_total: int, audio: bool) -> None:
    """Encode `frames` (exactly `frame_total` pictures of `size`) at 24 fps into `path`, with the tone if `audio`.

    Raises av.FFmpegError when FFmpeg cannot write, ValueError when `frames` is not `frame_total` long.
    """
    width, height = size
    with av.open(str(path), "w", format="mp4", options=CONTAINER_OPTIONS) as container:
        video = add_video_stream(container, size, X264_OPTIONS)
        sound = add_audio_stream(container) if audio else None

        written = 0
        for planes in frames:
            frame = VideoFrame(width, height, "yuv420p")
            _fill(frame, planes)
            frame.pts = written
            frame.time_base = Fraction(1, FPS)
            container.mux(video.encode(frame))
            written += 1
        if written != frame_total:
            raise ValueError(f"expected {frame_total} frames, got {written}")
        container.mux(video.encode(None))

        if sound is not None:
            mux_audio(container, sound, tone(frame_total * SAMPLE_RATE // FPS))


def _planes_of(frame: VideoFrame) -> Planes:
    """A decoded frame as BT.709 limited-range 4:2:0 planes (converted by swscale from whatever it was)."""
    frame = frame.reformat(format="yuv420p", dst_colorspace="itu709", dst_color_range="MPEG")
    images = []
    for index, plane in enumerate(frame.planes):
        width = frame.width if index == 0 else (frame.width + 1) // 2
        height = frame.height if index == 0 else (frame.height + 1) // 2
        raw = bytes(plane)
        if plane.line_size != width:
            raw = b"".join(raw[row * plane.line_size : row * plane.line_size + width] for row in range(height))
        images.append(Image.frombytes("L", (width, height), raw))
    return Planes(*images)


def probe_video(data: bytes) -> tuple[int, int, float] | None:
    """(width, height, seconds) of a video file's first video stream; None when FFmpeg cannot read it."""
    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            seconds = 0.0
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            width, height = stream.codec_context.width, stream.codec_context.height
            if width <= 0 or height <= 0 or seconds <= 0:
                return None
            return width, height, seconds
    except (av.FFmpegError, ValueError, OSError):
        return None


def video_frames(data: bytes, out: tuple[int, int], count: int) -> Iterator[Planes]:
    """Exactly `count` frames of the input video at 24 fps, fitted to `out`: for each output instant k/24 the
    latest frame shown at or before it (the last frame holds if the video ends early).

    Raises av.FFmpegError for a video FFmpeg cannot decode, ValueError for one without a single frame.
    """
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        shown: Planes | None = None
        index = 0
        origin: float | None = None
        for frame in container.decode(stream):
            at = float(frame.time) if frame.time is not None else index / FPS
            origin = at if origin is None else origin
            while shown is not None and index < count and index / FPS < at - origin:
                yield shown
                index += 1
            if index >= count:
                return
            shown = _planes_of(frame).fitted(out)
    if shown is None:
        raise ValueError("the input video has no frame")
    while index < count:
        yield shown
        index += 1
