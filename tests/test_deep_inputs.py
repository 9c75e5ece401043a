"""Issue 14 B: an accepted submit nested about 960 deep never poisons a store."""

from __future__ import annotations

import pytest

from tests.conftest import KEY, ClientFactory

ENDPOINT = "fal-ai/veo3/image-to-video"
NORMAL = {"prompt": "p", "image_url": "https://example.com/a.png"}


def deep_body(depth: int) -> bytes:
    """A valid submit whose undeclared `extra` field makes the body `depth` levels deep."""
    inner = depth - 1
    return b'{"prompt": "p", "image_url": "https://example.com/a.png", "extra": ' + b"[" * inner + b"]" * inner + b"}"


@pytest.mark.parametrize("depth", [958, 961, 965])
def test_a_deeply_nested_submit_never_poisons_the_store(make_client: ClientFactory, tmp_path, depth: int) -> None:  # type: ignore[no-untyped-def]
    state_dir = tmp_path / "shared"
    with make_client(state_dir=state_dir, policy="timed:0.5,1") as client:
        headers = {**KEY, "Content-Type": "application/json"}
        answer = client.post(f"/{ENDPOINT}", content=deep_body(depth), headers=headers)
        assert answer.status_code < 500
        accepted = answer.json().get("request_id") if answer.status_code == 200 else None
        client.post("/_emulator/clock", json={"advance": 10})  # past its start and finish: the wake-up path reads it
        assert client.post(f"/{ENDPOINT}", json=NORMAL, headers=KEY).status_code == 200
        if accepted:
            assert client.get(f"/_emulator/requests/{accepted}").status_code == 200
            status = client.get(f"/fal-ai/veo3/requests/{accepted}/status", headers=KEY)
            assert (status.status_code, status.json()["status"]) == (200, "COMPLETED")
    with make_client(state_dir=state_dir) as restarted:  # the same state (SQLite: the same file)
        assert restarted.post(f"/{ENDPOINT}", json=NORMAL, headers=KEY).status_code == 200
