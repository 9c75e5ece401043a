"""End to end: an unmodified fal_client subscribes with its own image and gets it back as a video.

A real `fal-emulator serve` (default timing, rendering on) in its own process; the one 1280x720 render of
the suite.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from fal_emulator.testing import EmulatorProcess
from tests.conftest import imported_fal_client
from tests.test_render import assert_close, data_uri, decode, framed, patterned, png


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("state")) as process:
        yield process


@pytest.fixture(scope="module")
def fal(server: EmulatorProcess) -> Iterator[ModuleType]:
    with imported_fal_client(server) as module:
        yield module


def test_subscribe_returns_a_video_whose_first_frame_is_the_input_image(fal: Any, server: EmulatorProcess) -> None:
    picture = patterned((1280, 720))
    arguments = {
        "prompt": "The camera drifts over the scene",
        "image_url": data_uri(png(framed(patterned((640, 360)), (0, 90)))),  # 4:3, cropped to 16:9
        "duration": "4s",
        "generate_audio": True,
    }
    updates: list[Any] = []
    output = fal.subscribe("fal-ai/veo3.1/fast/image-to-video", arguments=arguments, with_logs=True,
                           on_queue_update=updates.append)  # fmt: skip
    kinds = [type(update).__name__ for update in updates]
    assert kinds[0] == "Queued" and "InProgress" in kinds and kinds[-1] == "Completed"

    video = output["video"]
    assert server.listening is not None
    answer = httpx.get(video["url"], verify=ssl.create_default_context(cafile=server.listening.bundle))
    assert answer.status_code == 200 and int(answer.headers["content-length"]) == video["file_size"] == len(
        answer.content
    )
    clip = decode(answer.content, ends_only=True)
    assert (clip.size, clip.fps, clip.count, clip.audio) == ((1280, 720), 24, 96, ["aac"])
    assert clip.seconds == pytest.approx(4.0, abs=1 / 24) and clip.audio_seconds == pytest.approx(4.0, abs=0.05)
    assert_close(clip.frames[0], picture, mean=2.0, p99=6, most=12)
