"""The real server process: its ready line, server.json, and the `env` exports that follow it."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from fal_emulator.cli import env_lines
from fal_emulator.server import read_listening, server_file
from fal_emulator.settings import Settings
from fal_emulator.testing import EmulatorProcess


def test_env_exports_the_key_the_server_accepts_and_server_json_goes_when_it_stops(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path, extra_args=("--key", "only-this")) as server:
        listening = read_listening(tmp_path)
        assert listening is not None and listening == server.listening
        assert "export FAL_KEY=only-this" in env_lines(Settings(state_dir=tmp_path))
        assert server_file(tmp_path).stat().st_mode & 0o077 == 0
        context = ssl.create_default_context(cafile=listening.bundle)
        with httpx.Client(base_url=listening.https_url, verify=context) as client:
            body = {"prompt": "p"}
            assert client.post("/fal-ai/veo3", json=body, headers={"Authorization": "Key only-this"}).status_code == 200
            assert client.post("/fal-ai/veo3", json=body, headers={"Authorization": "Key other"}).status_code == 401
    assert not server_file(tmp_path).exists()


def test_the_same_ports_serve_plain_http_too(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path, policy="instant") as server:
        assert server.listening is not None
        response = httpx.get(f"{server.listening.http_url}/_emulator/health")
        assert response.json()["status"] == "ok"
        assert response.headers["x-fal-request-id"]
