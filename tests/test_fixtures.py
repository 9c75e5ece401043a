"""The clips in fixtures/: complete for the catalogue, as the manifest lists them, and really what they claim.

Reads container headers only (plus one decoded frame per shape), so it stays fast; the determinism test
re-encodes the smallest clip with `fixtures/generate.py --check --only`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from fal_emulator.catalog import load_catalog
from fal_emulator.paths import FIXTURES_DIR
from fal_emulator.video import FPS, clip_specs

av = pytest.importorskip("av")

MANIFEST = FIXTURES_DIR / "manifest.json"
GENERATE = FIXTURES_DIR / "generate.py"
BUDGET = 15 * 1024 * 1024
FRAME = Fraction(1, FPS)


def _manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return manifest


def _clips() -> list[dict[str, Any]]:
    return list(_manifest()["clips"]) if MANIFEST.exists() else []


CLIPS = _clips()


def _top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types, in file order."""
    boxes = []
    with path.open("rb") as handle:
        while header := handle.read(8):
            size, kind = int.from_bytes(header[:4], "big"), header[4:].decode("latin-1")
            if size == 1:
                size = int.from_bytes(handle.read(8), "big") - 8
            boxes.append(kind)
            if size == 0:
                break
            handle.seek(size - 8, 1)
    return boxes


def test_manifest_shape() -> None:
    manifest = _manifest()
    assert manifest["fps"] == FPS
    names = [clip["file"] for clip in manifest["clips"]]
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    assert MANIFEST.read_text(encoding="utf-8").endswith("}\n")


def test_manifest_is_exactly_the_catalogue_clips() -> None:
    wanted = {spec.file_name: spec for endpoint in load_catalog() for spec in clip_specs(endpoint)}
    listed = {clip["file"]: clip for clip in CLIPS}
    assert sorted(wanted.keys() - listed.keys()) == [], "clips missing: run python fixtures/generate.py"
    assert sorted(listed.keys() - wanted.keys()) == [], "clips no endpoint asks for: run python fixtures/generate.py"
    for name, spec in wanted.items():
        clip = listed[name]
        assert (clip["width"], clip["height"], clip["duration"], clip["audio"]) == (
            spec.width,
            spec.height,
            spec.duration,
            spec.audio,
        )


def test_total_size_within_budget() -> None:
    total = sum((FIXTURES_DIR / clip["file"]).stat().st_size for clip in CLIPS)
    assert 0 < total <= BUDGET


@pytest.mark.parametrize("clip", CLIPS, ids=[clip["file"] for clip in CLIPS])
def test_clip(clip: dict[str, Any]) -> None:
    path = FIXTURES_DIR / clip["file"]
    data = path.read_bytes()
    assert len(data) == clip["file_size"]
    assert hashlib.sha256(data).hexdigest() == clip["sha256"]
    boxes = _top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), "moov atom must come first (faststart)"

    seconds = clip["duration"]
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert video.average_rate == FPS
        assert (video.codec_context.width, video.codec_context.height) == (clip["width"], clip["height"])
        assert video.frames == seconds * FPS
        assert abs(video.duration * video.time_base - seconds) <= FRAME

        audio_streams = list(container.streams.audio)
        if clip["audio"]:
            assert len(audio_streams) == 1
            audio = audio_streams[0]
            assert audio.codec_context.name == "aac"
            assert audio.codec_context.sample_rate == 48_000
            assert audio.codec_context.channels in (1, 2)
            assert abs(audio.duration * audio.time_base - seconds) <= FRAME
        else:
            assert audio_streams == []
        assert len(container.streams) == 1 + len(audio_streams)


SHAPES = sorted({(clip["width"], clip["height"]) for clip in CLIPS})


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{w}x{h}" for w, h in SHAPES])
def test_first_frame_decodes(shape: tuple[int, int]) -> None:
    clip = min((c for c in CLIPS if (c["width"], c["height"]) == shape), key=lambda c: c["file_size"])
    with av.open(str(FIXTURES_DIR / clip["file"])) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == shape
        assert frame.pts == 0
        # Not a blank frame: the picture has a gradient and a label.
        lo, hi = frame.to_image().convert("L").getextrema()
        assert hi - lo > 100


@pytest.mark.skipif("libx264" not in av.codecs_available, reason="PyAV was built without libx264")
def test_generation_is_deterministic() -> None:
    smallest = min(CLIPS, key=lambda c: (c["width"] * c["height"] * c["duration"], c["file"]))
    result = subprocess.run(
        [sys.executable, str(GENERATE), "--check", "--only", smallest["file"]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check: OK" in result.stdout
