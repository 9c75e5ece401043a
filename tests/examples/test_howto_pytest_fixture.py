# tests/examples/test_howto_pytest_fixture.py
import fal_client
import pytest

from fal_emulator.control import FalEmulator

I2V = "fal-ai/veo3/image-to-video"
ARGUMENTS = {"prompt": "A lego chef cooks eggs", "image_url": "https://example.com/chef.png"}


def test_subscribe_returns_a_video(fal_emulator: FalEmulator) -> None:
    result = fal_client.subscribe(I2V, arguments=ARGUMENTS)
    assert result["video"]["content_type"] == "video/mp4"
    assert result["video"]["url"].startswith(fal_emulator.url)


def test_a_content_policy_rejection(fal_emulator: FalEmulator) -> None:
    fal_emulator.fail_next("content_policy_violation")  # the next submit, to any endpoint
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        fal_client.subscribe(I2V, arguments=ARGUMENTS)
    assert caught.value.status_code == 422
    assert caught.value.error_type == "content_policy_violation"


def test_a_rate_limit_is_retried_by_fal_client(fal_emulator: FalEmulator) -> None:
    fal_emulator.script(I2V, ["rate_limited", "ok"])  # a 429, then a normal answer
    fal_client.subscribe(I2V, arguments=ARGUMENTS)
    submits = fal_emulator.journal(method="POST", path=f"/{I2V}")
    assert [entry["status"] for entry in submits] == [429, 200]
    assert submits[0]["headers"]["authorization"] == "Key ***"  # the journal redacts credentials


def test_a_slow_queue_on_the_virtual_clock(fal_emulator: FalEmulator) -> None:
    fal_emulator.freeze()  # time now moves only by advance()
    fal_emulator.set_policy("realistic")  # 5 s queued, then 20 s + 10 s per second of video
    handle = fal_client.submit(I2V, arguments={**ARGUMENTS, "duration": "4s"})
    assert isinstance(handle.status(), fal_client.Queued)
    fal_emulator.advance(5)
    assert isinstance(handle.status(), fal_client.InProgress)
    fal_emulator.advance(60)
    assert isinstance(handle.status(), fal_client.Completed)


def test_a_failure_while_running(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_policy("manual")  # requests move only when told to
    handle = fal_client.submit(I2V, arguments=ARGUMENTS)
    fal_emulator.step(handle.request_id)
    assert isinstance(handle.status(), fal_client.InProgress)
    fal_emulator.fail(handle.request_id, "generation_timeout")
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 504
