"""A render's life beside its request's: it stops when no one wants it (cancel, reset, shutdown), it is not
evicted while wanted, it is made once for processes sharing a state dir.

In-process apps (tests/test_render_service.py's), a render paused after a few frames by a patched frame source,
so each test acts while a render is really encoding.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fal_emulator.render import job as render_job
from fal_emulator.render.picture import Planes
from tests.conftest import KEY
from tests.test_render import data_uri, png, solid
from tests.test_render_service import DEADLINE, Apps, HeldRenders, apps, result, status, submit

__all__ = ["apps"]  # the fixture


class Paused:
    """Frame sources that pause after `after` frames until `go` is set, counting the frames made after it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, after: int = 3) -> None:
        self.rendering = threading.Event()
        self.go = threading.Event()
        self.after_go = 0
        original = render_job.frames_of

        def frames_of(job: render_job.RenderJob) -> Iterator[Planes]:
            for index, planes in enumerate(original(job)):
                if index == after:
                    self.rendering.set()
                    assert self.go.wait(DEADLINE)
                if self.go.is_set():
                    self.after_go += 1
                yield planes

        monkeypatch.setattr(render_job, "frames_of", frames_of)


def renders(state_dir: Path) -> list[str]:
    folder = state_dir / "renders"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("action", ["cancel", "reset", "shutdown"])
def test_cancel_reset_and_shutdown_stop_the_render(apps: Apps, monkeypatch: pytest.MonkeyPatch, action: str) -> None:
    paused = Paused(monkeypatch)
    client, emulator = apps.start(policy="manual")
    submitted = submit(client, data_uri(png(solid((64, 64), (20, 160, 90)))))
    assert client.post(f"/_emulator/requests/{submitted['request_id']}/step").json()["status"] == "IN_PROGRESS"
    assert paused.rendering.wait(DEADLINE)  # encoding, three frames in
    if action == "cancel":
        assert client.put(submitted["cancel_url"], headers=KEY).status_code == 202
    elif action == "reset":
        assert client.post("/_emulator/reset").status_code == 200
    else:
        apps.stop(client)  # the app's lifespan ends, as when the server shuts down
    paused.go.set()
    assert emulator.renders.wait(DEADLINE)
    assert paused.after_go <= 1  # no CPU spent on it after it was stopped
    assert not [name for name in renders(apps.state_dir) if not name.endswith(".lock")]  # no file, no leftover


def test_a_render_wanted_or_being_downloaded_is_never_evicted(apps: Apps) -> None:
    client, emulator = apps.start(policy="manual", render_cache_mb=0)  # every finished render is over the bound
    red, green, blue = (submit(client, data_uri(png(solid((64, 64), colour)))) for colour in
                        ((250, 0, 0), (0, 250, 0), (0, 0, 250)))  # fmt: skip
    client.post(f"/_emulator/requests/{red['request_id']}/step")
    assert emulator.renders.wait(DEADLINE)  # red is made; its request has not collected it yet
    red_name = renders(apps.state_dir)[0]
    client.post(f"/_emulator/requests/{green['request_id']}/step")
    assert emulator.renders.wait(DEADLINE)  # green's completion trims the cache: red is still wanted
    assert red_name in renders(apps.state_dir)

    client.post(f"/_emulator/requests/{red['request_id']}/step")
    assert status(client, red)["status"] == "COMPLETED"  # at once, with the file made for it
    video = result(client, red)["video"]
    release = emulator.renders.hold(video["file_name"])  # a download of red in progress
    client.post(f"/_emulator/requests/{blue['request_id']}/step")
    assert emulator.renders.wait(DEADLINE)
    whole = client.get(video["url"])
    assert whole.status_code == 200 and len(whole.content) == video["file_size"]
    release()
    client.post(f"/_emulator/requests/{green['request_id']}/step")
    client.post(f"/_emulator/requests/{blue['request_id']}/step")
    for done in (green, blue):
        assert status(client, done)["status"] == "COMPLETED"
    submit(client, data_uri(png(solid((64, 64), (9, 9, 9)))))  # one more render: now the cache keeps its bound
    emulator.queue.step(emulator.requests()[-1].request_id)
    assert emulator.renders.wait(DEADLINE)
    assert len([name for name in renders(apps.state_dir) if name.endswith(".mp4")]) == 1


CLAIMER = """
import sys
from fal_emulator.catalog import load_catalog
from fal_emulator.render.cache import RenderCache
from fal_emulator.render.job import plan, render_file
endpoint = load_catalog().get("fal-ai/veo3.1/fast/image-to-video")
job = plan(endpoint, {"prompt": "a calm sea", "image_url": sys.argv[2], "aspect_ratio": "1:1", "duration": "4s",
                      "generate_audio": False, "resolution": "720p", "auto_fix": False, "negative_prompt": ""})
cache = RenderCache(__import__("pathlib").Path(sys.argv[1]), 1 << 30)
claim = cache.claim(job.name)
print("claimed" if claim else "refused", job.name, flush=True)
sys.stdin.readline()
render_file(job, str(cache.path(job.name)))
claim.release()
"""


def test_two_processes_sharing_a_state_dir_render_a_request_once(apps: Apps) -> None:
    image_url = data_uri(png(solid((64, 64), (120, 40, 200))))
    apps.state_dir.mkdir(parents=True)
    command = [sys.executable, "-c", CLAIMER, str(apps.state_dir / "renders"), image_url]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as other:
        assert other.stdout is not None and other.stdin is not None
        claimed = other.stdout.readline().split()
        assert claimed[0] == "claimed"  # the other process is rendering it
        client, emulator = apps.start(store="sqlite")
        held = emulator.renders.executor = HeldRenders()
        submitted = submit(client, image_url)
        assert status(client, submitted)["status"] == "IN_PROGRESS"  # waits for the other process's file
        other.stdin.write("go\n")
        other.stdin.flush()
        assert other.wait(DEADLINE) == 0
        assert status(client, submitted)["status"] == "COMPLETED"
        assert not held.started.is_set()  # this process never rendered it
        video: dict[str, Any] = result(client, submitted)["video"]
        assert video["file_name"] == claimed[1] and len(client.get(video["url"]).content) == video["file_size"] > 0
