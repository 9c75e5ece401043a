"""What extend-video's runner accepts as its input video, checked before anything is rendered.

fal's limits for `fal-ai/veo3.1/extend-video` and `fal-ai/veo3.1/fast/extend-video`:
- "Input videos up to 8 seconds" (https://fal.ai/models/fal-ai/veo3.1/fast/extend-video/llms.txt, in
  /work/shared/reference/fal-protocol.md §7): a longer one is the model error `video_duration_too_long`
  (https://fal.ai/docs/documentation/model-apis/errors.md: `ctx` `max_duration`, `provided_duration`).
- "The video should be 720p or 1080p resolution in 16:9 or 9:16 aspect ratio." (the `video_url`
  description in both endpoints' OpenAPI documents, `openapi/`): fal documents no error type for it, so
  another size is refused as a fal app refuses a field (`FieldException`: `type` `value_error`, that
  sentence as `msg`; DIVERGENCES.md #26a).

Only a video the emulator can read (a `data:` URI or an upload) is checked; any other URL is never fetched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fal_emulator.errors import ModelError, error_item
from fal_emulator.failures import FAILURES
from fal_emulator.render import encode
from fal_emulator.render.job import Reader, read_input

MAX_INPUT_SECONDS = 8.0
SECONDS_SLACK = 0.05  # an 8 s clip's streams often measure a frame or an AAC packet longer
SHORT_SIDES = (720, 1080)
ASPECT_SLACK = 0.02  # 1920x1088 (a 16-pixel-aligned 1080p) is still 16:9
SIZE_MESSAGE = "The video should be 720p or 1080p resolution in 16:9 or 9:16 aspect ratio."
LOC = ["body", "video_url"]


def check_input_video(arguments: Mapping[str, Any], reader: Reader | None) -> None:
    """Refuse a readable `video_url` beyond extend-video's limits (see the module docstring).

    Raises ModelError (422): `video_duration_too_long` for more than 8 s, `value_error` for a size that is
    not 720p or 1080p in 16:9 or 9:16. A video FFmpeg cannot read is left to the renderer (fixture clip).
    """
    url = arguments.get("video_url")
    video = read_input(url, reader)
    probe = encode.probe_video(video) if video is not None else None
    if probe is None:
        return
    width, height, seconds = probe
    if seconds > MAX_INPUT_SECONDS + SECONDS_SLACK:
        context = {"max_duration": MAX_INPUT_SECONDS, "provided_duration": round(seconds, 2)}
        failure = FAILURES["video_duration_too_long"]
        raise ModelError([error_item(LOC, failure.message, failure.name, ctx=context)])
    short, long = sorted((width, height))
    if short not in SHORT_SIDES or abs(long / short - 16 / 9) > ASPECT_SLACK:
        raise ModelError([error_item(LOC, SIZE_MESSAGE, "value_error")])
