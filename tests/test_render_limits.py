"""extend-video's runner refuses an input video beyond fal's limits (8 s; 720p or 1080p, 16:9 or 9:16) with
fal's 422, in the runner by default and at once with `validate_at="submit"` (see fal_emulator.render.limits)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.render.limits import SIZE_MESSAGE
from fal_emulator.settings import Settings
from tests.conftest import CATALOG, KEY
from tests.test_render import data_uri, input_video

EXTEND = "/fal-ai/veo3.1/fast/extend-video"


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[dict[str, TestClient]]:
    made = {
        mode: TestClient(
            create_app(
                Settings(seed=7, policy="instant", validate_at=mode, render="off", state_dir=tmp_path / mode),
                catalog=CATALOG,
            )
        )  # fmt: skip
        for mode in ("runner", "submit")
    }
    yield made
    for client in made.values():
        client.close()


def body(seconds: int, size: tuple[int, int]) -> dict[str, Any]:
    video = input_video([(40, 80, 160 + index) for index in range(seconds)], 6, size)  # 6 fps: cheap to encode
    return {"prompt": "the camera keeps going", "video_url": data_uri(video, "video/mp4")}


@pytest.mark.parametrize(
    ("seconds", "size", "wanted"),
    [
        (9, (1280, 720), {"type": "video_duration_too_long", "msg": "Video is too long",
                          "ctx": {"max_duration": 8.0, "provided_duration": 9.0}}),
        (2, (640, 360), {"type": "value_error", "msg": SIZE_MESSAGE}),
        (2, (1080, 1080), {"type": "value_error", "msg": SIZE_MESSAGE}),
    ],
)  # fmt: skip
def test_a_video_beyond_the_limits_is_refused_with_fals_422(
    clients: dict[str, TestClient], seconds: int, size: tuple[int, int], wanted: dict[str, Any]
) -> None:
    request = body(seconds, size)
    answer = clients["runner"].post(EXTEND, json=request, headers=KEY).json()  # accepted; the runner refuses it
    status = clients["runner"].get(answer["status_url"], headers=KEY).json()
    assert (status["status"], status["error_type"]) == ("COMPLETED", wanted["type"])
    result = clients["runner"].get(answer["response_url"], headers=KEY)
    [item] = result.json()["detail"]
    assert result.status_code == 422 and item["loc"] == ["body", "video_url"]
    assert {key: item[key] for key in wanted} == wanted
    immediate = clients["submit"].post(EXTEND, json=request, headers=KEY)
    assert immediate.status_code == 422 and immediate.json()["detail"][0]["type"] == wanted["type"]


@pytest.mark.parametrize("size", [(1280, 720), (1080, 1920)])
def test_a_video_within_the_limits_is_accepted(clients: dict[str, TestClient], size: tuple[int, int]) -> None:
    assert clients["submit"].post(EXTEND, json=body(8, size), headers=KEY).status_code == 200
