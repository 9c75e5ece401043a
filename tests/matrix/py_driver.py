"""Drive one unmodified fal_client release through fal's own hostnames; one JSON line per operation.

Run by tests/client_matrix.py in that release's own venv, with only `fal-emulator env --proxy`'s variables
set (HTTPS_PROXY, SSL_CERT_FILE, FAL_KEY, ...): the client and httpx find the emulator by themselves.
It asserts what a user relies on: statuses that end COMPLETED, a video URL that downloads an MP4, an
upload URL that serves the bytes and works as an input. Works with fal_client 0.5.9 to 1.x (their common API).
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import fal_client
import httpx
from PIL import Image

I2V = "fal-ai/veo3/image-to-video"
T2V = "fal-ai/veo3"
HELD = "fal-ai/veo3/fast"  # the harness holds requests to this endpoint IN_QUEUE (policy `manual`)
ARGS = {"prompt": "A lego chef cooks eggs", "image_url": "https://example.com/chef.png"}


def download(url: str) -> bytes:
    assert url.startswith("https://v3.fal.media/"), url
    answer = httpx.get(url)  # through HTTPS_PROXY, trusting SSL_CERT_FILE, as any httpx program would
    assert answer.status_code == 200, (url, answer.status_code)
    return bytes(answer.content)


def assert_video(output: dict[str, Any], name: str | None = None) -> str:
    video = output["video"]
    data = download(video["url"])
    assert data[4:8] == b"ftyp" and len(data) == video["file_size"], video
    if name:
        assert video["file_name"] == name, video["file_name"]
    return str(video["url"])


def subscribe() -> str:
    seen: list[object] = []
    output = fal_client.subscribe(I2V, arguments=ARGS, with_logs=True, on_queue_update=seen.append)
    names = [type(status).__name__ for status in seen]
    assert names and names[-1] == "Completed", names
    assert "Queued" in names or "InProgress" in names, names
    return f"{' → '.join(dict.fromkeys(names))}; {assert_video(output)}"


def queue_api() -> str:
    handle = fal_client.submit(T2V, arguments={"prompt": "p"})
    names = []
    for _ in range(100):
        names.append(type(handle.status(with_logs=True)).__name__)
        if names[-1] == "Completed":
            break
    assert names[-1] == "Completed", names
    assert_video(handle.get())
    held = fal_client.submit(HELD, arguments={"prompt": "p"})
    assert type(held.status()).__name__ == "Queued"
    held.cancel()
    after = type(held.status()).__name__
    assert after == "Completed", after  # a cancelled request never runs: it completes with client_cancelled
    return f"{' → '.join(dict.fromkeys(names))}; cancel: Queued → {after}"


def run() -> str:
    return assert_video(fal_client.run(T2V, arguments={"prompt": "p"}))


def upload() -> str:
    portrait = Image.new("RGB", (720, 1280), (40, 90, 200))
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "portrait.png")
    portrait.save(path)
    file_url = fal_client.upload_file(Path(path))
    with open(path, "rb") as stream:
        assert download(file_url) == stream.read()
    image_url = fal_client.upload_image(portrait)
    assert Image.open(io.BytesIO(download(image_url))).size == (720, 1280)
    data_url = fal_client.upload(b"hello", "text/plain")
    assert download(data_url) == b"hello"
    # an uploaded image is an input: `auto` follows its portrait shape
    output = fal_client.subscribe(I2V, arguments={**ARGS, "image_url": image_url, "aspect_ratio": "auto"})
    assert_video(output, "720x1280_8s_audio.mp4")
    return f"upload_file, upload_image, upload: {file_url}"


def main() -> None:
    print(json.dumps({"op": "version", "ok": True, "detail": version("fal-client")}), flush=True)
    operations: list[tuple[str, Callable[[], str]]] = [
        ("subscribe", subscribe),
        ("queue", queue_api),
        ("run", run),
        ("upload", upload),
    ]
    for name, operation in operations:
        try:
            detail, ok = operation(), True
        except BaseException as exc:  # every failure is a cell of the table
            detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
            traceback.print_exc(file=sys.stderr)
        print(json.dumps({"op": name, "ok": ok, "detail": detail}), flush=True)


if __name__ == "__main__":
    main()
