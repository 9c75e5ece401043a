"""End to end: an unmodified fal_client 1.0.3 against a real `fal-emulator serve` over real sockets.

The server runs in its own process on free ports with the default timing (0.5 s queued, 1.5 s
running). fal_client reads its hosts at import, so it is imported only after the environment points
it at the server. Every returned MP4 is downloaded and opened with PyAV.
"""

from __future__ import annotations

import asyncio
import io
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from fal_emulator.testing import EmulatorProcess
from tests.conftest import SEED_CLIPS, SEED_REQUESTS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("state")) as process:
        yield process


def download(url: str, server: EmulatorProcess) -> bytes:
    assert server.listening is not None
    response = httpx.get(url, verify=ssl.create_default_context(cafile=server.listening.bundle))
    response.raise_for_status()
    return response.content


def assert_video(data: bytes, expected: tuple[int, int, int, bool]) -> None:
    width, height, seconds, audio = expected
    with av.open(io.BytesIO(data), mode="r") as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert (video.width, video.height) == (width, height)
        assert video.average_rate == 24
        assert container.duration is not None
        assert abs(container.duration / av.time_base - seconds) <= 1 / 24
        audio_codecs = [stream.codec_context.name for stream in container.streams.audio]
        assert audio_codecs == (["aac"] if audio else [])


def check_output(output: dict[str, Any], endpoint_id: str, server: EmulatorProcess) -> None:
    video = output["video"]
    assert video["content_type"] == "video/mp4"
    data = download(video["url"], server)
    assert len(data) == video["file_size"]
    assert_video(data, SEED_CLIPS[endpoint_id])


@pytest.mark.parametrize("endpoint_id", list(SEED_REQUESTS))
def test_subscribe_sees_every_state_with_logs_and_returns_a_playable_mp4(
    fal: Any, server: EmulatorProcess, endpoint_id: str
) -> None:
    updates: list[Any] = []
    output = fal.subscribe(
        endpoint_id, arguments=SEED_REQUESTS[endpoint_id], with_logs=True, on_queue_update=updates.append
    )
    kinds = [type(update).__name__ for update in updates]
    assert kinds[0] == "Queued" and kinds[-1] == "Completed"
    assert "InProgress" in kinds
    in_progress = [update for update in updates if isinstance(update, fal.InProgress)]
    assert any(update.logs for update in in_progress)
    completed = updates[-1]
    assert completed.error is None and completed.metrics["inference_time"] > 0
    check_output(output, endpoint_id, server)


@pytest.mark.parametrize("endpoint_id", list(SEED_REQUESTS))
def test_submit_status_result(fal: Any, server: EmulatorProcess, endpoint_id: str) -> None:
    handle = fal.submit(endpoint_id, arguments=SEED_REQUESTS[endpoint_id])
    status = fal.status(endpoint_id, handle.request_id, with_logs=True)
    assert isinstance(status, fal.Queued | fal.InProgress)
    if isinstance(status, fal.Queued):
        assert status.position == 0
    output = fal.result(endpoint_id, handle.request_id)
    assert isinstance(fal.status(endpoint_id, handle.request_id), fal.Completed)
    check_output(output, endpoint_id, server)


@pytest.mark.parametrize("endpoint_id", list(SEED_REQUESTS))
def test_cancel_while_queued_then_result_raises_499(fal: Any, endpoint_id: str) -> None:
    handle = fal.submit(endpoint_id, arguments=SEED_REQUESTS[endpoint_id])
    fal.cancel(endpoint_id, handle.request_id)
    status = handle.status()
    assert isinstance(status, fal.Completed)
    assert status.error_type == "client_cancelled"
    with pytest.raises(fal.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 499
    with pytest.raises(fal.FalClientHTTPError) as again:
        handle.cancel()
    assert again.value.status_code == 400


def test_cancel_of_an_unknown_request_raises_404(fal: Any) -> None:
    with pytest.raises(fal.FalClientHTTPError) as caught:
        fal.cancel("fal-ai/veo3/image-to-video", "00000000-0000-4000-8000-000000000000")
    assert caught.value.status_code == 404


@pytest.mark.parametrize("endpoint_id", list(SEED_REQUESTS))
def test_run_returns_the_output_synchronously(fal: Any, server: EmulatorProcess, endpoint_id: str) -> None:
    check_output(fal.run(endpoint_id, arguments=SEED_REQUESTS[endpoint_id]), endpoint_id, server)


@pytest.mark.parametrize("endpoint_id", list(SEED_REQUESTS))
def test_async_client_subscribe(fal: Any, server: EmulatorProcess, endpoint_id: str) -> None:
    async def go() -> Any:
        updates: list[Any] = []
        client = fal.AsyncClient()
        output = await client.subscribe(
            endpoint_id, arguments=SEED_REQUESTS[endpoint_id], with_logs=True, on_queue_update=updates.append
        )
        await (await client._client).aclose()  # AsyncClient has no close(); release its connection pool
        return output, updates

    output, updates = asyncio.run(go())
    assert type(updates[-1]).__name__ == "Completed"
    check_output(output, endpoint_id, server)


def test_env_command_prints_the_exports_for_the_running_server(server: EmulatorProcess) -> None:
    from fal_emulator.exports import env_lines, running_server

    lines = env_lines(running_server(server.state_dir))
    exported = dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
    assert server.client_env().items() <= exported.items()
    assert exported["REQUESTS_CA_BUNDLE"] == exported["CURL_CA_BUNDLE"] == exported["SSL_CERT_FILE"]
    bundle = Path(exported["SSL_CERT_FILE"]).read_text()
    assert bundle.count("BEGIN CERTIFICATE") > 100  # certifi's CAs ...
    assert bundle.endswith(Path(server.state_dir, "tls", "ca.pem").read_text())  # ... plus ours


PLAIN_ENV = {name: value for name, value in os.environ.items() if not name.startswith("FAL_")}


def test_the_readme_quick_start_example_runs(server: EmulatorProcess) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    completed = subprocess.run(
        [sys.executable, "-c", example],
        env={**PLAIN_ENV, **server.proxy_env()},  # what `eval "$(fal-emulator env --proxy)"` exports
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert [line.split()[0] for line in lines[:1]] == ["Queued"]
    assert any(line.startswith("InProgress [{") for line in lines)
    assert lines[-2].startswith("Completed")
    assert lines[-1].startswith("https://v3.fal.media/files/1280x720_8s_audio.mp4 ")
