"""End to end: an unmodified fal_client subscribes with its own image and gets it back as a video.

A real `fal-emulator serve` (default timing, rendering on) in its own process; the one 1280x720 render of
the suite, and one 720x720 render from an upload.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from fal_emulator.render.job import is_render_name
from fal_emulator.testing import EmulatorProcess
from tests.test_render import assert_close, data_uri, decode, framed, patterned, png, solid


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("state")) as process:
        yield process


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


def test_an_upload_renders_under_any_of_the_emulators_host_names_with_a_consistent_last_modified(
    fal: Any, server: EmulatorProcess
) -> None:
    """The renderer reads an upload from storage whatever host its URL names (127.0.0.1, localhost, fal's own
    media hosts through the proxy); the rendered file's `Last-Modified` is never later than the answer's `Date`."""
    assert server.listening is not None
    verify = ssl.create_default_context(cafile=server.listening.bundle)
    key = {"Authorization": f"Key {server.listening.key or 'fal-emulator-key'}"}
    with httpx.Client(base_url=server.listening.https_url, verify=verify, headers=key) as http:  # @fal-ai/client's flow
        urls = http.post("/storage/upload/initiate", params={"storage_type": "fal-cdn-v3"},
                         json={"file_name": "swatch.png", "content_type": "image/png"}).json()  # fmt: skip
        put = http.put(urls["upload_url"], content=png(solid((96, 96), (30, 120, 200))))
        assert put.status_code == 200
    url = urls["file_url"]
    path = httpx.URL(url).path
    assert path.startswith("/files/uploads/")
    hosts = ("http://127.0.0.1:9", "http://localhost:9", "https://v3.fal.media", "https://v3b.fal.media")
    handles = [
        fal.submit(
            "fal-ai/veo3.1/fast/image-to-video",
            arguments={
                "prompt": "p",
                "image_url": image_url,
                "aspect_ratio": "1:1",
                "duration": "4s",
                "generate_audio": False,
            },
        )  # fmt: skip
        for image_url in (url, *(host + path for host in hosts))
    ]
    videos = [handle.get()["video"] for handle in handles]  # they run side by side
    assert len({video["file_name"] for video in videos}) == 1 and is_render_name(videos[0]["file_name"])
    video = videos[0]  # rendered from the upload each time, and once
    for _ in range(3):
        answer = httpx.get(video["url"], verify=verify)
        assert answer.status_code == 200 and len(answer.content) == video["file_size"]
        modified, date = (parsedate_to_datetime(answer.headers[name]) for name in ("last-modified", "date"))
        assert modified <= date
