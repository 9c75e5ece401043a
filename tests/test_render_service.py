"""The emulator renders a request's video from its input image while the request runs.

In-process apps (one event loop per client), rendering at the smallest real output size (720x720, 4 s);
tests/test_render_e2e.py drives a real server with fal_client.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.render import job as render_job
from fal_emulator.render.picture import Planes
from fal_emulator.service import Emulator
from fal_emulator.settings import Settings
from tests.conftest import CATALOG, KEY
from tests.test_render import assert_close, data_uri, decode, framed, patterned, png, solid
from tests.test_storage import initiate_and_put

I2V = "/fal-ai/veo3.1/fast/image-to-video"
SQUARE = {"aspect_ratio": "1:1", "duration": "4s", "generate_audio": False}  # 720x720, 4 s: the cheapest real clip
DEADLINE = 60.0  # seconds: only a broken emulator gets anywhere near it


class HeldRenders(ThreadPoolExecutor):
    """Render threads that start a render only once `release` is set (`abandon`: the render then dies)."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.started = threading.Event()
        self.release = threading.Event()
        self.abandon = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def held() -> Any:
            self.started.set()
            assert self.release.wait(DEADLINE)
            if self.abandon:
                raise RuntimeError("the process died")
            return fn(*args, **kwargs)

        return super().submit(held)


class Apps:
    """In-process emulators (instant policy) on `state_dir` unless told otherwise, each client with one event loop."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.clients: list[TestClient] = []

    def start(self, **overrides: Any) -> tuple[TestClient, Emulator]:
        values: dict[str, Any] = {"seed": 7, "policy": "instant", "state_dir": self.state_dir, **overrides}
        app = create_app(Settings(**values), catalog=CATALOG)
        client = TestClient(app)
        client.__enter__()  # one event loop serves every request of this client, as uvicorn's does
        self.clients.append(client)
        return client, app.state.emulator

    def stop(self, client: TestClient) -> None:
        self.clients.remove(client)
        client.__exit__(None, None, None)


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[Apps]:
    started = Apps(tmp_path / "state")
    yield started
    for client in list(started.clients):
        started.stop(client)


def submit(client: TestClient, image_url: str, **fields: Any) -> dict[str, Any]:
    response = client.post(I2V, json={"prompt": "a calm sea", "image_url": image_url, **SQUARE, **fields}, headers=KEY)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def status(client: TestClient, submitted: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(submitted["status_url"], headers=KEY).json()
    return answer


def result(client: TestClient, submitted: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(submitted["response_url"], headers=KEY).json()
    return answer


def test_the_input_image_comes_back_as_the_first_frame_and_media_is_served_exactly(apps: Apps) -> None:
    client, emulator = apps.start()
    picture = patterned((720, 720))
    image_url = data_uri(png(framed(patterned((360, 360)), (200, 0))))
    submitted = submit(client, image_url, generate_audio=True)
    assert emulator.renders.wait(DEADLINE)
    done = status(client, submitted)
    assert done["status"] == "COMPLETED" and done["metrics"]["inference_time"] > 0  # it ran while rendering
    video = result(client, submitted)["video"]
    assert video["url"].endswith("/files/" + video["file_name"]) and video["content_type"] == "video/mp4"

    whole = client.get(video["url"])
    assert whole.status_code == 200 and int(whole.headers["content-length"]) == video["file_size"] == len(whole.content)
    assert whole.headers["etag"] == f'"{hashlib.sha256(whole.content).hexdigest()}"'
    assert client.get(video["url"], headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
    part = client.get(video["url"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]

    clip = decode(whole.content, ends_only=True)
    assert (clip.size, clip.fps, clip.count, clip.audio) == ((720, 720), 24, 96, ["aac"])
    assert clip.seconds == pytest.approx(4.0, abs=1 / 24)
    assert_close(clip.frames[0], picture, mean=2.0, p99=6, most=12)

    page = client.get("/_emulator/ui", params={"request": submitted["request_id"]}).text
    assert f'src="/files/{video["file_name"]}"' in page  # the dashboard plays it (with Range requests)

    placeholder = submit(client, "https://example.com/never-fetched.png", generate_audio=True)  # same size
    billed = [
        client.get(one["response_url"], headers=KEY).headers["x-fal-billable-units"] for one in (submitted, placeholder)
    ]
    assert billed[0] == billed[1]  # billed as the same clip

    # The same request again: the cached render answers at once (instant policy), byte for byte.
    again = submit(client, image_url, generate_audio=True)
    assert status(client, again)["status"] == "COMPLETED"
    assert result(client, again)["video"] == video
    assert client.get(video["url"]).content == whole.content


def test_a_first_last_frame_request_ends_on_its_last_frame(apps: Apps) -> None:
    client, emulator = apps.start()
    first, last = (230, 60, 40), (40, 90, 230)
    body = {
        "prompt": "p",
        "first_frame_url": data_uri(png(solid((64, 48), first))),
        "last_frame_url": data_uri(png(solid((48, 64), last))),
        "duration": "4s",
        "generate_audio": False,
    }
    submitted = client.post("/fal-ai/veo3.1/fast/first-last-frame-to-video", json=body, headers=KEY).json()
    assert emulator.renders.wait(DEADLINE)
    clip = decode(client.get(result(client, submitted)["video"]["url"]).content, ends_only=True)
    assert (clip.size, clip.count) == ((1280, 720), 96)  # auto: the first frame's shape
    assert_close(clip.frames[0], solid((1280, 720), first), mean=1.5, p99=5, most=6)
    assert_close(clip.frames[-1], solid((1280, 720), last), mean=1.5, p99=5, most=6)


def test_other_requests_are_answered_while_a_clip_is_encoding(apps: Apps, monkeypatch: pytest.MonkeyPatch) -> None:
    encoding, release = threading.Event(), threading.Event()
    frames_of = render_job.frames_of

    def paused(job: render_job.RenderJob) -> Iterator[Planes]:
        for index, planes in enumerate(frames_of(job)):
            if index == 2:  # the encoder is open and has frames: hold it here
                encoding.set()
                assert release.wait(DEADLINE)
            yield planes

    monkeypatch.setattr(render_job, "frames_of", paused)
    client, emulator = apps.start()
    rendering = submit(client, data_uri(png(solid((64, 64), (12, 140, 200)))))
    assert encoding.wait(DEADLINE)
    # Meanwhile, on the same event loop: a new request is submitted, polled and completed.
    other = client.post(I2V, json={"prompt": "p", "image_url": "https://example.com/cat.png"}, headers=KEY).json()
    assert status(client, other)["status"] == "COMPLETED"
    assert status(client, rendering)["status"] == "IN_PROGRESS"
    assert not release.is_set()  # all of that was answered while the render was still inside the encoder
    release.set()
    assert emulator.renders.wait(DEADLINE)
    assert status(client, rendering)["status"] == "COMPLETED"


def test_render_off_and_unread_urls_keep_the_fixture_clips(apps: Apps, tmp_path: Path) -> None:
    client, _ = apps.start(render="off")
    submitted = submit(client, data_uri(png(solid((64, 64), (1, 2, 3)))))
    assert result(client, submitted)["video"]["file_name"] == "720x720_4s_silent.mp4"
    client, _ = apps.start(state_dir=tmp_path / "other")
    submitted = submit(client, "https://example.com/never-fetched.png")
    assert result(client, submitted)["video"]["file_name"] == "720x720_4s_silent.mp4"


def test_an_uploaded_image_renders_and_auto_follows_its_shape(apps: Apps) -> None:
    client, emulator = apps.start()
    image_url = initiate_and_put(client, png(solid((90, 160), (240, 200, 20))), "portrait.png", "image/png")
    submitted = submit(client, image_url, aspect_ratio="auto")
    assert emulator.renders.wait(DEADLINE)
    video = result(client, submitted)["video"]
    clip = decode(client.get(video["url"]).content, ends_only=True)
    assert clip.size == (720, 1280) and clip.count == 96
    assert_close(clip.frames[-1], solid((720, 1280), (240, 200, 20)), mean=1.5, p99=5, most=6)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_step_and_complete_wait_for_the_render_and_cancel_does_not(apps: Apps, store: str) -> None:
    client, emulator = apps.start(policy="manual", store=store)
    held = emulator.renders.executor = HeldRenders()
    submitted = submit(client, data_uri(png(solid((64, 64), (90, 20, 160)))))
    request_id = submitted["request_id"]
    assert client.post(f"/_emulator/requests/{request_id}/step").json()["status"] == "IN_PROGRESS"
    assert held.started.wait(DEADLINE)  # the render starts as the request starts
    assert client.post(f"/_emulator/requests/{request_id}/complete").json()["status"] == "IN_PROGRESS"
    assert status(client, submitted)["status"] == "IN_PROGRESS"  # no output yet: a runner cannot finish
    cancelled = submit(client, data_uri(png(solid((64, 64), (90, 20, 160)))))  # the same render
    client.post(f"/_emulator/requests/{cancelled['request_id']}/step")
    assert client.put(cancelled["cancel_url"], headers=KEY).status_code == 202
    assert status(client, cancelled)["status"] == "COMPLETED"
    held.release.set()
    assert emulator.renders.wait(DEADLINE)
    assert status(client, submitted)["status"] == "COMPLETED"
    assert result(client, submitted)["video"]["file_size"] > 0


def test_a_render_lost_with_its_process_is_made_again_after_a_restart(apps: Apps) -> None:
    client, emulator = apps.start(store="sqlite")
    held = emulator.renders.executor = HeldRenders()
    submitted = submit(client, data_uri(png(solid((64, 64), (200, 30, 90)))))
    assert held.started.wait(DEADLINE) and status(client, submitted)["status"] == "IN_PROGRESS"
    held.abandon = True
    held.release.set()  # the render dies with its process; the store keeps the request IN_PROGRESS
    apps.stop(client)

    client, emulator = apps.start(store="sqlite")
    assert status(client, submitted)["status"] == "IN_PROGRESS"  # rendering again
    assert emulator.renders.wait(DEADLINE)
    video = result(client, submitted)["video"]
    assert len(client.get(video["url"]).content) == video["file_size"] > 0
    assert video["file_name"] != "720x720_4s_silent.mp4"


def test_a_lost_render_whose_upload_is_gone_completes_with_the_fixture_clip(apps: Apps) -> None:
    client, emulator = apps.start(store="sqlite")
    held = emulator.renders.executor = HeldRenders()
    image_url = initiate_and_put(client, png(solid((64, 64), (10, 10, 10))), "dark.png", "image/png")
    submitted = submit(client, image_url)
    assert held.started.wait(DEADLINE)
    held.abandon = True
    held.release.set()
    apps.stop(client)
    for path in sorted((apps.state_dir / "uploads").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()

    client, _ = apps.start(store="sqlite")
    assert status(client, submitted)["status"] == "COMPLETED"  # never stuck
    video = result(client, submitted)["video"]
    assert video["file_name"] == "720x720_4s_silent.mp4"
    assert len(client.get(video["url"]).content) == video["file_size"]


def test_a_render_that_fails_completes_with_the_fixture_clip(apps: Apps) -> None:
    client, emulator = apps.start()
    held = emulator.renders.executor = HeldRenders()
    held.abandon = True  # the encoder raises, as for a video FFmpeg stops decoding half-way
    held.release.set()
    submitted = submit(client, data_uri(png(solid((64, 64), (3, 3, 3)))), seed=5)
    assert emulator.renders.wait(DEADLINE)
    assert status(client, submitted)["status"] == "COMPLETED"
    video = result(client, submitted)["video"]
    assert video["file_name"] == "720x720_4s_silent.mp4"
    assert len(client.get(video["url"]).content) == video["file_size"]


def test_the_render_cache_keeps_to_its_size_least_recently_used_first(apps: Apps) -> None:
    client, emulator = apps.start(render_cache_mb=0)
    names = []
    for colour in ((250, 0, 0), (0, 250, 0)):
        submitted = submit(client, data_uri(png(solid((64, 64), colour))))
        assert emulator.renders.wait(DEADLINE)
        names.append(result(client, submitted)["video"]["file_name"])
    assert sorted(path.name for path in (apps.state_dir / "renders").iterdir()) == [names[1]]
    assert client.get(f"/files/{names[0]}").status_code == 404
    assert client.get(f"/files/{names[1]}").status_code == 200


def test_render_settings_are_checked() -> None:
    assert Settings.from_env({"FAL_EMULATOR_RENDER": "off", "FAL_EMULATOR_RENDER_CACHE_MB": "64"}).render == "off"
    assert Settings.from_env({"FAL_EMULATOR_RENDER_CACHE_MB": "64"}).render_cache_mb == 64
    with pytest.raises(ValueError, match="render mode"):
        Settings(render="sometimes")
    with pytest.raises(ValueError, match="render_cache_mb"):
        Settings(render_cache_mb=-1)
