"""Who may call the control plane, however the app is started (issue 14: defect H)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from tests.conftest import CATALOG
from tests.test_durability import free_port

REMOTE = ("203.0.113.7", 50000)  # a client beyond loopback (TEST-NET-3)


def app_for(tmp_path: Path, **settings: object) -> object:
    return create_app(Settings(state_dir=tmp_path, **settings), catalog=CATALOG)  # type: ignore[arg-type]


def test_h_without_a_token_only_loopback_clients_reach_the_control_plane(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    remote = TestClient(app, client=REMOTE)  # type: ignore[arg-type]
    answer = remote.post("/_emulator/reset")
    assert answer.status_code == 403
    assert "control token" in answer.json()["detail"] and answer.headers["x-fal-request-id"]
    for method, path in [("GET", "/_emulator/requests"), ("POST", "/_emulator/clock"), ("GET", "/_emulator/journal"),
                         ("GET", "/_emulator/webhooks"), ("PUT", "/_emulator/policy")]:  # fmt: skip
        assert remote.request(method, path).status_code == 403, path
    assert remote.get("/_emulator/health").status_code == 200  # open: health and the OpenAPI documents
    assert remote.get("/_emulator/openapi.json").status_code == 200
    for client in [("127.0.0.1", 5000), ("::1", 5000), ("testclient", 50000)]:
        local = TestClient(app, base_url="http://127.0.0.1:8470", client=client)  # type: ignore[arg-type]
        assert local.post("/_emulator/reset").status_code == 200


def test_h_a_proxied_control_call_is_checked_too(tmp_path: Path) -> None:
    remote = TestClient(app_for(tmp_path), client=REMOTE)  # type: ignore[arg-type]
    proxied = {"x-fal-target-url": "https://queue.fal.run/_emulator/reset"}
    assert remote.post("/api/fal/proxy", headers=proxied).status_code == 403


def test_h_with_a_token_every_client_must_send_it(tmp_path: Path) -> None:
    app = app_for(tmp_path, control_token="s3cret")
    for client in [REMOTE, ("127.0.0.1", 5000)]:
        caller = TestClient(app, client=client)  # type: ignore[arg-type]
        assert caller.post("/_emulator/reset").status_code == 401
        assert caller.post("/_emulator/reset", headers={"X-Fal-Emulator-Token": "wrong"}).status_code == 401
        assert caller.post("/_emulator/reset", headers={"X-Fal-Emulator-Token": "s3cret"}).status_code == 200


def outward_address() -> str | None:
    """This machine's own non-loopback IPv4 address (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.fixture
def factory_on_all_interfaces(tmp_path: Path) -> Iterator[int]:
    """The README's `uvicorn --factory fal_emulator.http.app:create_app --host 0.0.0.0`, with no token."""
    port = free_port()
    env = {**os.environ, "FAL_EMULATOR_STATE_DIR": str(tmp_path)}
    env.pop("FAL_EMULATOR_CONTROL_TOKEN", None)
    command = [sys.executable, "-m", "uvicorn", "--factory", "fal_emulator.http.app:create_app", "--host", "0.0.0.0",
               "--port", str(port), "--log-level", "info"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:  # the readiness signal
        if "Application startup complete" in line:
            break
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stderr.close()


def test_h_uvicorn_factory_on_0_0_0_0_keeps_reset_closed(factory_on_all_interfaces: int) -> None:
    address = outward_address()
    if address is None:
        pytest.skip("needs a non-loopback IPv4 address on this machine to connect from")
    port = factory_on_all_interfaces
    with httpx.Client(trust_env=False) as http:
        assert http.post(f"http://{address}:{port}/_emulator/reset").status_code == 403
        assert http.get(f"http://{address}:{port}/_emulator/health").status_code == 200
        assert http.post(f"http://127.0.0.1:{port}/_emulator/reset").status_code == 200


LOOPBACK = ("127.0.0.1", 5000)


def test_a_web_page_on_another_site_cannot_change_the_emulator(tmp_path: Path) -> None:
    """CSRF: a form or fetch() from another site carries its Origin; the control plane refuses it (403) and
    nothing changes. The user's own pages on loopback names and the dashboard (same origin) still work."""
    app = app_for(tmp_path, policy="manual")
    local = TestClient(app, base_url="http://127.0.0.1:8470", client=LOOPBACK)  # type: ignore[arg-type]
    assert local.post(
        "/fal-ai/veo3/image-to-video", json={"prompt": "p"}, headers={"Authorization": "Key k"}
    ).is_success
    for origin in ["https://evil.example", "http://evil.example:8470", "null", "http://["]:
        answer = local.post("/_emulator/reset", headers={"Origin": origin, "Content-Type": "text/plain"})
        assert answer.status_code == 403, origin
        assert "another site" in answer.json()["detail"]
        assert local.put("/_emulator/policy", json={"policy": "instant"}, headers={"Origin": origin}).status_code == 403
    assert len(local.get("/_emulator/requests").json()) == 1  # the request survived every attempt
    for origin in ["http://127.0.0.1:8470", "http://localhost:3000", "http://[::1]:5173"]:
        assert local.post("/_emulator/clock", json={"advance": 0}, headers={"Origin": origin}).status_code == 200
    assert local.get("/_emulator/requests", headers={"Origin": "https://evil.example"}).status_code == 200  # reads:
    # a browser does not let the other site read the answer (no CORS headers are sent)


def test_a_rebound_dns_name_cannot_reach_the_control_plane_without_a_token(tmp_path: Path) -> None:
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends `Host: evil.example`;
    without a token only the emulator's own names are answered. With a token the token decides."""
    app = app_for(tmp_path)
    for base in ["http://127.0.0.1:8470", "http://localhost:8470", "http://[::1]:8470", "http://app.localhost"]:
        assert TestClient(app, base_url=base, client=LOOPBACK).get("/_emulator/requests").status_code == 200  # type: ignore[arg-type]
    rebound = TestClient(app, base_url="http://evil.example:8470", client=LOOPBACK)  # type: ignore[arg-type]
    answer = rebound.get("/_emulator/requests")
    assert answer.status_code == 403 and "Host: evil.example" in answer.json()["detail"]
    assert rebound.get("/_emulator/ui").status_code == 403
    assert rebound.get("/_emulator/health").status_code == 200  # open paths stay open
    public = app_for(tmp_path, public_url="http://emulator.internal:8470")
    named = TestClient(public, base_url="http://emulator.internal:8470", client=LOOPBACK)  # type: ignore[arg-type]
    assert named.get("/_emulator/requests").status_code == 200
    tokened = TestClient(app_for(tmp_path, control_token="t"), base_url="http://evil.example", client=LOOPBACK)  # type: ignore[arg-type]
    assert tokened.get("/_emulator/requests", headers={"X-Fal-Emulator-Token": "t"}).status_code == 200
