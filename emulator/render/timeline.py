"""What each rendered clip shows, frame by frame: a generator of planes per kind of request.

- `image` (image-to-video): the fitted image, then a slow camera move; frame 0 is the image itself.
- `first_last` (first-last-frame-to-video): the first frame pushes in while the last frame, pushed in
  the same way, pulls back to rest; a cross-fade in the middle of the clip joins them. Frame 0 is the
  first image, the final frame is exactly the last image.
- `references` (reference-to-video): each reference in turn, in order, with the camera move, each
  cross-fading into the next; frame 0 is the first reference.
- `extend` (extend-video): the input video (at 24 fps, fitted), then the extension: its last frame with
  the camera move.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from fal_emulator.render.encode import video_frames
from fal_emulator.render.picture import Motion, Planes

FADE_START, FADE_END = 0.35, 0.65  # first-last-frame: share of the clip where the cross-fade runs
REFERENCE_FADE = 0.25  # reference-to-video: last share of each reference's segment spent fading into the next


def _progress(index: int, total: int) -> float:
    return index / (total - 1) if total > 1 else 1.0


def image_move(planes: Planes, motion: Motion, total: int) -> Iterator[Planes]:
    width, height = planes.size
    for index in range(total):
        yield planes.seen_through(motion.box(_progress(index, total), width, height))


def first_to_last(first: Planes, last: Planes, motion: Motion, total: int) -> Iterator[Planes]:
    width, height = first.size
    for index in range(total):
        t = _progress(index, total)
        alpha = min(1.0, max(0.0, (t - FADE_START) / (FADE_END - FADE_START)))
        leaving = first.seen_through(motion.box(t, width, height)) if alpha < 1.0 else first
        arriving = last.seen_through(motion.box(1.0 - t, width, height)) if alpha > 0.0 else last
        yield leaving.blend(arriving, alpha)


def through_references(references: Sequence[Planes], motion: Motion, total: int) -> Iterator[Planes]:
    width, height = references[0].size
    count = len(references)
    for index in range(total):
        position = _progress(index, total) * count  # which reference, and how far into its segment
        current = min(int(position), count - 1)
        local = position - current
        picture = references[current].seen_through(motion.box(local, width, height))
        fading = (local - (1.0 - REFERENCE_FADE)) / REFERENCE_FADE
        if current + 1 < count and fading > 0.0:
            picture = picture.blend(references[current + 1], fading)
        yield picture


def extended(video: bytes, size: tuple[int, int], input_frames: int, motion: Motion, total: int) -> Iterator[Planes]:
    """`input_frames` frames of the input video, then `total - input_frames` frames continuing from its last."""
    last: Planes | None = None
    for last in video_frames(video, size, input_frames):
        yield last
    assert last is not None
    yield from _tail(last, motion, total - input_frames)


def _tail(start: Planes, motion: Motion, count: int) -> Iterator[Planes]:
    """The extension: `count` frames moving on from `start` (its first frame is already one step in)."""
    width, height = start.size
    for index in range(1, count + 1):
        yield start.seen_through(motion.box(index / count, width, height))
