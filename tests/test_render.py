"""Rendering from the user's input: first frames, last frames, references, extensions, keys and the cache.

Clips are rendered small here (the renderer takes any even size), decoded with PyAV and compared with the
input picture pixel by pixel; tests/test_render_service.py covers the emulator's real output sizes.
"""

from __future__ import annotations

import base64
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from fal_emulator.catalog import Endpoint, load_catalog
from fal_emulator.render.cache import RenderCache
from fal_emulator.render.job import RenderJob, choose_motion, is_render_name, plan, render_file
from fal_emulator.render.picture import crop_box
from fal_emulator.video import ClipSpec

CATALOG = load_catalog()


def endpoint(endpoint_id: str) -> Endpoint:
    found = CATALOG.get(endpoint_id)
    assert found is not None
    return found


# --------------------------------------------------------------------------------------------- helpers


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def data_uri(data: bytes, content_type: str = "image/png") -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def solid(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", size, colour)


def patterned(size: tuple[int, int]) -> Image.Image:
    """A picture with structure on every axis: red ramps left to right, green is radial, blue ramps top down."""
    red = Image.linear_gradient("L").rotate(90).resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (red, green, blue))


def framed(picture: Image.Image, margin: tuple[int, int]) -> Image.Image:
    """`picture` at twice its size, inside magenta margins that the output's crop must cut away."""
    big = picture.resize((picture.width * 2, picture.height * 2), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (big.width + 2 * margin[0], big.height + 2 * margin[1]), (255, 0, 255))
    canvas.paste(big, margin)
    return canvas


@dataclass
class Decoded:
    frames: list[Image.Image]  # every frame, or (ends_only) the first and the last
    count: int  # frames in the stream
    size: tuple[int, int]
    fps: float
    seconds: float
    audio: list[str]  # codec names of the audio streams
    audio_seconds: float


def decode(source: Path | bytes, *, ends_only: bool = False) -> Decoded:
    """The frames (as RGB, converted by the BT.709 matrix the stream is tagged with) and the stream facts."""
    opened = av.open(str(source) if isinstance(source, Path) else io.BytesIO(source), "r")
    with opened as container:
        video = container.streams.video[0]
        audio = [stream.codec_context.name for stream in container.streams.audio]
        audio_seconds = 0.0
        if container.streams.audio:
            stream = container.streams.audio[0]
            assert stream.duration is not None and stream.time_base is not None
            audio_seconds = float(stream.duration * stream.time_base)
        frames, count, last = [], 0, None
        for count, frame in enumerate(container.decode(video), start=1):
            if not ends_only or count == 1:
                frames.append(rgb_image(frame))
            last = frame
        if ends_only and last is not None:
            frames.append(rgb_image(last))
        assert container.duration is not None and video.average_rate is not None
        return Decoded(frames, count, (video.width, video.height), float(video.average_rate),
                       container.duration / av.time_base, audio, audio_seconds)  # fmt: skip


def rgb_image(frame: av.VideoFrame) -> Image.Image:
    """A decoded frame as RGB, converted by swscale with the colour matrix the frame is tagged with."""
    plane = frame.reformat(format="rgb24").planes[0]
    return Image.frombytes("RGB", (frame.width, frame.height), bytes(plane), "raw", "RGB", plane.line_size)


def rgb_frame(image: Image.Image) -> av.VideoFrame:
    frame = av.VideoFrame(image.width, image.height, "rgb24")
    plane, row = frame.planes[0], image.width * 3
    data = image.tobytes()
    padding = bytes(plane.line_size - row)
    plane.update(b"".join(data[top : top + row] + padding for top in range(0, len(data), row)))
    return frame


def pixel_error(got: Image.Image, wanted: Image.Image) -> tuple[float, int, int]:
    """(mean absolute error over pixels and channels, 99th percentile, maximum), in 8-bit levels."""
    difference = ImageChops.difference(got, wanted)
    mean = sum(ImageStat.Stat(difference).mean) / 3
    worst = ImageChops.lighter(ImageChops.lighter(*difference.split()[:2]), difference.split()[2])
    histogram = worst.histogram()
    total, seen, p99 = sum(histogram), 0, 0
    for level, count in enumerate(histogram):
        seen += count
        if seen >= 0.99 * total:
            p99 = level
            break
    extremes = cast("tuple[tuple[int, int], ...]", difference.getextrema())
    return mean, p99, max(extreme[1] for extreme in extremes)


def assert_close(got: Image.Image, wanted: Image.Image, *, mean: float, p99: int, most: int) -> None:
    error = pixel_error(got, wanted)
    assert error[0] <= mean and error[1] <= p99 and error[2] <= most, f"pixel error (mean, p99, max) {error}"


def rendered(job: RenderJob, folder: Path) -> Path:
    path = folder / job.name
    size, sha256 = render_file(job, str(path))
    assert size == path.stat().st_size
    return path


# --------------------------------------------------------------------------------------------- first frames

# (output size, margins around the doubled picture): 16:9 from a 4:3 picture, 9:16 from a wider one, 1:1
# from a landscape and from a portrait picture; the margins are what Veo's centre crop removes.
SHAPES = {
    "16:9": ((160, 90), (0, 30)),
    "9:16": ((90, 160), (40, 0)),
    "1:1-from-landscape": ((96, 96), (50, 0)),
    "1:1-from-portrait": ((96, 96), (0, 20)),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_first_frame_is_the_input_image_cropped_to_the_output(shape: str, tmp_path: Path) -> None:
    size, margin = SHAPES[shape]
    for picture, tolerance in (
        (solid(size, (200, 80, 40)), (1.5, 5, 6)),
        (patterned(size), (3.0, 10, 20)),  # 4:2:0 chroma and the encoder's rounding
    ):
        job = RenderJob("image", ClipSpec(*size, 1, False), "pan-left", images=(png(framed(picture, margin)),))
        clip = decode(rendered(job, tmp_path))
        assert clip.size == size
        assert_close(clip.frames[0], picture, mean=tolerance[0], p99=tolerance[1], most=tolerance[2])


def test_the_crop_is_centred_and_keeps_the_output_aspect() -> None:
    assert crop_box((400, 300), (160, 90)) == (0.0, 37.5, 400.0, 262.5)
    assert crop_box((400, 300), (90, 160)) == pytest.approx((115.625, 0.0, 284.375, 300.0))
    assert crop_box((160, 90), (160, 90)) == (0.0, 0.0, 160.0, 90.0)


def test_duration_fps_size_and_audio_follow_the_spec(tmp_path: Path) -> None:
    image = png(patterned((64, 48)))
    with_audio = decode(rendered(RenderJob("image", ClipSpec(128, 72, 2, True), "push-in", images=(image,)), tmp_path))
    assert (with_audio.size, with_audio.fps, len(with_audio.frames)) == ((128, 72), 24, 48)
    assert with_audio.seconds == pytest.approx(2.0, abs=1 / 24)
    assert with_audio.audio == ["aac"] and with_audio.audio_seconds == pytest.approx(2.0, abs=0.05)
    silent = decode(rendered(RenderJob("image", ClipSpec(72, 128, 1, False), "push-in", images=(image,)), tmp_path))
    assert (silent.size, len(silent.frames), silent.audio) == ((72, 128), 24, [])


def test_the_camera_moves(tmp_path: Path) -> None:
    picture = patterned((160, 90))
    clip = decode(
        rendered(RenderJob("image", ClipSpec(160, 90, 1, False), "pan-right", images=(png(picture),)), tmp_path)
    )
    assert pixel_error(clip.frames[-1], picture)[0] > 2 * pixel_error(clip.frames[0], picture)[0]


# --------------------------------------------------------------------------------------------- other kinds


def test_first_last_frame_starts_on_the_first_and_ends_on_the_last(tmp_path: Path) -> None:
    first, last = patterned((160, 90)), solid((160, 90), (30, 90, 220))
    images = (png(framed(first, (0, 30))), png(framed(last.rotate(0), (40, 0))))
    clip = decode(rendered(RenderJob("first_last", ClipSpec(160, 90, 1, False), "tilt-up", images=images), tmp_path))
    assert len(clip.frames) == 24
    assert_close(clip.frames[0], first, mean=3.0, p99=10, most=20)
    assert_close(clip.frames[-1], last, mean=1.5, p99=6, most=6)  # no mbtree: p99 at the max
    middle = pixel_error(clip.frames[12], last)[0]
    assert 4 < middle < pixel_error(clip.frames[0], last)[0]  # on the way from one to the other


def test_reference_video_moves_through_the_references_in_order(tmp_path: Path) -> None:
    colours = [(220, 40, 40), (40, 200, 60), (30, 60, 220)]
    images = tuple(png(solid((64, 64), colour)) for colour in colours)
    clip = decode(rendered(RenderJob("references", ClipSpec(96, 96, 3, False), "push-in", images=images), tmp_path))
    total = len(clip.frames)
    # Solid pictures: the camera move changes nothing, so each reference's frames are exactly its colour.
    for index, colour in ((0, colours[0]), (total // 2, colours[1]), (total - 1, colours[2])):
        assert_close(clip.frames[index], solid((96, 96), colour), mean=1.5, p99=5, most=6)


def input_video(colours: list[tuple[int, int, int]], fps: int, size: tuple[int, int]) -> bytes:
    """An MP4 (not ours: another frame rate and size) showing each colour for one second."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index in range(fps * len(colours)):
            frame = rgb_frame(solid(size, colours[index // fps]))
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def test_extend_video_is_the_input_video_then_the_extension(tmp_path: Path) -> None:
    red, blue = (220, 40, 40), (30, 60, 220)
    video = input_video([red, blue], 30, (320, 240))  # 2 s at 30 fps, 4:3
    job = RenderJob("extend", ClipSpec(160, 90, 1, False), "push-in", video=video, input_frames=48)
    clip = decode(rendered(job, tmp_path))
    assert (len(clip.frames), clip.fps) == (48 + 24, 24)
    assert clip.seconds == pytest.approx(3.0, abs=1 / 24)
    for index, colour in ((0, red), (20, red), (30, blue), (47, blue), (71, blue)):
        assert_close(clip.frames[index], solid((160, 90), colour), mean=4.5, p99=6, most=8)  # two encodings


def test_the_same_job_renders_byte_identical_files(tmp_path: Path) -> None:
    job = RenderJob("image", ClipSpec(96, 96, 1, True), "drift-up-left", images=(png(patterned((80, 60))),))
    first = render_file(job, str(tmp_path / "a.mp4"))
    second = render_file(job, str(tmp_path / "b.mp4"))
    assert first == second
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert not [name for name in os.listdir(tmp_path) if ".part-" in name]


# --------------------------------------------------------------------------------------------- planning


def test_plan_reads_data_uris_and_uploads_and_never_a_plain_url() -> None:
    image = png(solid((90, 160), (1, 2, 3)))
    i2v = endpoint("fal-ai/veo3.1/fast/image-to-video")
    job = plan(i2v, {"prompt": "p", "image_url": data_uri(image), "duration": "4s"})
    assert job is not None and job.kind == "image" and job.images == (image,)
    assert (job.spec.width, job.spec.height, job.spec.duration, job.frames) == (720, 1280, 4, 96)  # auto: portrait
    assert plan(i2v, {"prompt": "p", "image_url": "https://example.com/cat.png"}) is None
    uploaded = {"http://x/files/uploads/ab/cat.png": ("image/png", image)}
    from_upload = plan(i2v, {"prompt": "p", "image_url": "http://x/files/uploads/ab/cat.png"}, uploaded.get)
    assert from_upload is not None and from_upload.images == (image,)
    assert plan(endpoint("fal-ai/veo3.1/fast"), {"prompt": "p"}) is None  # text to video: nothing to read


def test_a_photo_turned_by_its_exif_orientation_is_fitted_upright(tmp_path: Path) -> None:
    upright = patterned((90, 160))
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # stored 160x90; EXIF 6 turns it back
    exif = sideways.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    job = plan(endpoint("fal-ai/veo3.1/fast/image-to-video"), {"prompt": "p", "image_url": data_uri(buffer.getvalue())})
    assert job is not None and (job.spec.width, job.spec.height) == (720, 1280)  # auto: as the photo is seen
    small = RenderJob("image", ClipSpec(90, 160, 1, False), "push-in", images=job.images)
    assert_close(decode(rendered(small, tmp_path)).frames[0], upright, mean=4.0, p99=12, most=32)


@pytest.mark.parametrize("mode", ["I;16", "LA", "P", "CMYK"])
def test_a_16_bit_palette_grey_alpha_or_cmyk_picture_renders_in_its_colours(mode: str, tmp_path: Path) -> None:
    if mode == "I;16":  # a 16-bit greyscale PNG at 0x6000 of 0xFFFF: 8-bit level 96
        picture, wanted = Image.frombytes("I;16", (64, 48), b"\x00\x60" * 64 * 48), solid((64, 48), (96, 96, 96))
    else:
        wanted = solid((64, 48), (96, 96, 96) if mode == "LA" else (200, 40, 40))
        picture = Image.new("LA", (64, 48), (96, 255)) if mode == "LA" else wanted.convert(mode)
        if mode == "P":
            picture = wanted.convert("P", palette=Image.Palette.ADAPTIVE)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG" if mode == "CMYK" else "PNG")
    job = plan(endpoint("fal-ai/veo3.1/fast/image-to-video"), {"prompt": "p", "image_url": data_uri(buffer.getvalue())})
    assert job is not None
    small = RenderJob("image", ClipSpec(64, 48, 1, False), "push-in", images=job.images)
    assert_close(decode(rendered(small, tmp_path), ends_only=True).frames[0], wanted, mean=3.0, p99=5, most=8)


def test_plan_picks_the_kind_of_each_endpoint() -> None:
    image, other = data_uri(png(solid((64, 64), (9, 9, 9)))), data_uri(png(solid((64, 64), (200, 9, 9))))
    flf = endpoint("fal-ai/veo3.1/first-last-frame-to-video")
    both = plan(flf, {"prompt": "p", "first_frame_url": image, "last_frame_url": other})
    assert both is not None and both.kind == "first_last" and len(both.images) == 2
    only_first = plan(flf, {"prompt": "p", "first_frame_url": image, "last_frame_url": "https://x/last.png"})
    assert only_first is not None and only_first.kind == "image"
    refs = plan(
        endpoint("fal-ai/veo3.1/reference-to-video"), {"prompt": "p", "image_urls": [image, "https://x", other]}
    )
    assert refs is not None and refs.kind == "references" and len(refs.images) == 2
    video = input_video([(1, 2, 3)], 24, (96, 128))
    extend = plan(endpoint("fal-ai/veo3.1/extend-video"), {"prompt": "p", "video_url": data_uri(video, "video/mp4")})
    assert extend is not None and extend.kind == "extend" and extend.input_frames == 24
    assert (extend.spec.width, extend.spec.height, extend.frames) == (720, 1280, 24 + 7 * 24)  # auto follows it
    unreadable = data_uri(b"not a video", "video/mp4")
    assert plan(endpoint("fal-ai/veo3.1/extend-video"), {"prompt": "p", "video_url": unreadable}) is None


def test_the_key_covers_what_changes_the_bytes_and_nothing_else() -> None:
    i2v = endpoint("fal-ai/veo3.1/fast/image-to-video")
    image = data_uri(png(solid((64, 64), (9, 9, 9))))

    def name(**arguments: object) -> str:
        job = plan(i2v, {"prompt": "p", "image_url": image, **arguments})
        assert job is not None
        return job.name

    assert is_render_name(name())
    assert name(seed=3) == name(seed=3, prompt="another prompt")  # the seed picks the move: same bytes
    assert name(seed=3) != name(seed=4)
    assert name(seed=3) != name(seed=3, duration="4s") != name(seed=3, generate_audio=False)
    assert name(seed=3) != name(seed=3, image_url=data_uri(png(solid((64, 64), (9, 9, 10)))))
    assert choose_motion({"prompt": "a"}) == choose_motion({"prompt": "a"})


# --------------------------------------------------------------------------------------------- the cache


def test_the_cache_evicts_the_least_recently_used_files_beyond_its_size(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path, max_bytes=300)
    names = [f"{digit * 32}.mp4" for digit in "abcd"]
    for age, name in enumerate(names):
        (tmp_path / name).write_bytes(b"x" * 100)
        os.utime(tmp_path / name, (1_000 + age, 1_000 + age))  # a is the oldest
    stale = tmp_path / f"{names[0]}.part-1-abc"
    stale.write_bytes(b"partial")
    os.utime(stale, (1_000, 1_000))
    assert cache.get(names[0]) == tmp_path / names[0]  # a hit makes `a` the most recently used
    assert cache.evict(keep={names[1]}) == [names[2]]  # `b` is older but kept; `c` goes, 300 bytes are left
    assert not stale.exists()
    cache.max_bytes = 100
    assert cache.evict() == [names[1], names[3]]
    assert sorted(os.listdir(tmp_path)) == [names[0]]
    assert cache.get("../escape.mp4") is None and cache.get(names[2]) is None
    with pytest.raises(ValueError):
        cache.path("x.mp4")
    kept = (tmp_path / names[0]).stat()
    assert time.time() - kept.st_atime < 60 and kept.st_mtime == 1_000  # used now; Last-Modified unchanged
