"""The durable stores (SQLite, Redis) keep every request through a restart, a kill -9, and across worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fal_emulator.testing import EmulatorProcess
from tests.stores import redis_url

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "p", "image_url": "https://example.com/a.png"}
KEY = {"Authorization": "Key k"}


def client(server: EmulatorProcess) -> httpx.Client:
    assert server.listening is not None
    return httpx.Client(base_url=server.listening.http_url, headers=KEY)


def snapshot(http: httpx.Client, request_ids: list[str]) -> list[tuple[str, Any]]:
    answers = [http.get(f"/fal-ai/veo3/requests/{request_id}/status").json() for request_id in request_ids]
    return [(answer["status"], answer.get("queue_position")) for answer in answers]


@pytest.fixture(params=["sqlite", "redis"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings, as environment variables, of a durable store that is empty now."""
    if request.param == "sqlite":
        return {"FAL_EMULATOR_STORE": "sqlite"}
    return {"FAL_EMULATOR_STORE": "redis", "FAL_EMULATOR_REDIS_URL": redis_url(request)}


def store_args(env: dict[str, str]) -> tuple[str, ...]:
    """The same settings as `serve` flags."""
    args = ("--store", env["FAL_EMULATOR_STORE"])
    return (*args, "--redis-url", env["FAL_EMULATOR_REDIS_URL"]) if "FAL_EMULATOR_REDIS_URL" in env else args


@pytest.mark.parametrize("stop", ["terminate", "kill -9"])
def test_nothing_submitted_is_lost_when_the_server_stops(tmp_path: Path, stop: str, store_env: dict[str, str]) -> None:
    args = store_args(store_env)
    with EmulatorProcess(tmp_path, policy="manual", extra_args=args) as first, client(first) as http:
        request_ids = [http.post(f"/{ENDPOINT}", json=BODY).json()["request_id"] for _ in range(3)]
        http.post(f"/_emulator/requests/{request_ids[0]}/step")
        http.post(f"/_emulator/requests/{request_ids[1]}/complete")
        before = snapshot(http, request_ids)
        if stop == "kill -9":
            first.kill()
    assert before == [("IN_PROGRESS", None), ("COMPLETED", None), ("IN_QUEUE", 0)]
    with EmulatorProcess(tmp_path, policy="manual", extra_args=args) as second, client(second) as http:
        assert snapshot(http, request_ids) == before
        assert http.get(f"/fal-ai/veo3/requests/{request_ids[1]}").json()["video"]["content_type"] == "video/mp4"
        http.post(f"/_emulator/requests/{request_ids[2]}/complete")
        assert http.get(f"/fal-ai/veo3/requests/{request_ids[2]}").status_code == 200
        assert http.post(f"/{ENDPOINT}", json=BODY).json()["request_id"] not in request_ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def workers(tmp_path: Path, store_env: dict[str, str]) -> Iterator[str]:
    """Two uvicorn worker processes serving one durable state; yields the base URL once both are up."""
    port = free_port()
    env = {**os.environ, **store_env, "FAL_EMULATOR_STATE_DIR": str(tmp_path),
           "FAL_EMULATOR_POLICY": "manual", "FAL_EMULATOR_SEED": "5"}  # fmt: skip
    command = [sys.executable, "-m", "uvicorn", "--factory", "fal_emulator.http.app:create_app", "--workers", "2",
               "--port", str(port), "--log-level", "info"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    started = 0
    for line in process.stderr:  # the readiness signal: each worker logs its startup
        started += "Application startup complete" in line
        if started == 2:
            break
    try:
        assert started == 2, "the workers did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stderr.close()


def test_several_workers_serve_one_shared_state(workers: str) -> None:
    submitted: list[tuple[int, str]] = []  # (pid of the worker that took the submit, request id)
    for _ in range(200):  # a new connection each time: the kernel spreads them over the workers
        with httpx.Client(base_url=workers, headers=KEY) as fresh:
            pid = fresh.get("/_emulator/health").json()["pid"]
            answer = fresh.post(f"/{ENDPOINT}", json=BODY).json()
        assert answer["queue_position"] == len(submitted)
        submitted.append((pid, answer["request_id"]))
        if len(submitted) >= 8 and len({pid for pid, _ in submitted}) == 2:
            break
    assert len({pid for pid, _ in submitted}) == 2, "both workers took submits"
    assert len({request_id for _, request_id in submitted}) == len(submitted)
    for position, (submitter, request_id) in enumerate(submitted):
        for _ in range(200):  # read each request back through the worker that did not take it
            with httpx.Client(base_url=workers, headers=KEY) as fresh:
                if fresh.get("/_emulator/health").json()["pid"] != submitter:
                    status = fresh.get(f"/fal-ai/veo3/requests/{request_id}/status").json()
                    assert status["queue_position"] == position
                    break
        else:
            raise AssertionError("never reached the other worker")
