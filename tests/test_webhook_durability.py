"""A webhook survives the process that took its submit: after a `kill -9`, a restart on the same state (SQLite)
or another host on the same Redis delivers it, once, keeping its retry schedule."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from fal_emulator.testing import EmulatorProcess
from tests.stores import redis_url
from tests.webhook_receiver import Receiver

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "p", "image_url": "https://example.com/a.png"}
KEY = {"Authorization": "Key k"}
PASSWORD, TOKEN = "pw-0f9e8d7c", "tk-1a2b3c4d"


def client(server: EmulatorProcess) -> httpx.Client:
    assert server.listening is not None
    return httpx.Client(base_url=server.listening.http_url, headers=KEY)


def submit(http: httpx.Client, webhook: str) -> str:
    answer = http.post(f"/{ENDPOINT}", json=BODY, params={"fal_webhook": webhook})
    assert answer.status_code == 200, answer.text
    request_id: str = answer.json()["request_id"]
    return request_id


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Ask again until `condition()` answers something true (each ask is a round trip to a server)."""
    deadline = time.monotonic() + timeout
    while not (answer := condition()):
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
    return answer


def attempts(http: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = http.get("/_emulator/webhooks").json()
    return found


def test_a_retry_pending_when_the_process_is_killed_is_delivered_once_after_a_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    port = receiver.server.server_address[1]
    url = f"http://hook-user:{PASSWORD}@127.0.0.1:{port}/hook?token={TOKEN}"  # its secrets never go to disk
    receiver.statuses = [500]  # the first attempt is refused: a retry is pending
    args = ("--store", "sqlite")
    with EmulatorProcess(tmp_path, policy="manual", extra_args=args) as first, client(first) as http:
        retried, waiting = submit(http, url), submit(http, url)  # `waiting` never completes before the kill
        http.post(f"/_emulator/requests/{retried}/complete")
        headers, body = receiver.next()
        assert headers["authorization"].startswith("Basic ")  # the URL's credentials, used to deliver
        [refused] = wait_for(lambda: attempts(http), "recorded attempt")  # recorded once the book has the retry
        assert (refused["status"], refused["next_attempt_in"]) == (500, 7.0)
        first.kill()
    on_disk = b"".join(path.read_bytes() for path in tmp_path.glob("*.sqlite3*"))
    assert PASSWORD.encode() not in on_disk and TOKEN.encode() not in on_disk
    with EmulatorProcess(tmp_path, policy="manual", extra_args=args) as second, client(second) as http:
        http.post("/_emulator/clock", json={"advance": 7})  # the retry is due 7 s after the first attempt
        again_headers, again = receiver.next()
        assert again == body and json.loads(again)["request_id"] == retried  # the first attempt's body, resent
        http.post(f"/_emulator/requests/{waiting}/complete")
        assert json.loads(receiver.next()[1])["request_id"] == waiting
        done = wait_for(lambda: len(found := attempts(http)) == 2 and found, "two recorded attempts")
        assert sorted((entry["request_id"], entry["attempt"], entry["status"]) for entry in done) == sorted(
            [(retried, 2, 200), (waiting, 1, 200)]
        )
    with sqlite3.connect(tmp_path / "webhooks.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 0  # nothing left to send again
    assert receiver.received.empty()  # three POSTs in all: refused, retried, delivered


def test_another_host_delivers_what_a_killed_host_left_once(
    tmp_path: Path, receiver: Receiver, request: pytest.FixtureRequest
) -> None:
    store = redis_url(request)
    args = ("--store", "redis", "--redis-url", store)
    receiver.statuses = [500]
    with ExitStack() as stack:
        hosts = [stack.enter_context(EmulatorProcess(tmp_path / name, policy="manual", seed=5, extra_args=args))
                 for name in ("a", "b")]  # fmt: skip
        https = [stack.enter_context(client(host)) for host in hosts]
        retried = submit(https[0], receiver.url)
        https[1].post(f"/_emulator/requests/{retried}/complete")
        _, body = receiver.next()  # refused, by whichever host claimed the first attempt
        attempted = wait_for(lambda: [i for i, http in enumerate(https) if attempts(http)], "recorded attempt")
        [killed] = attempted
        survivor = https[1 - killed]
        waiting = submit(https[killed], receiver.url)  # taken by the host about to die, not completed yet
        hosts[killed].kill()
        survivor.post("/_emulator/clock", json={"advance": 7})
        again = receiver.next()[1]
        assert again == body and json.loads(again)["request_id"] == retried
        survivor.post(f"/_emulator/requests/{waiting}/complete")
        assert json.loads(receiver.next()[1])["request_id"] == waiting
        done = wait_for(lambda: len(found := attempts(survivor)) == 2 and found, "two recorded attempts")
        assert sorted((entry["request_id"], entry["attempt"]) for entry in done) == sorted([(retried, 2), (waiting, 1)])
        with redis.Redis.from_url(store) as shared:
            assert shared.hlen("fal-emulator:deliveries") == 0  # nothing left to send again
    assert receiver.received.empty()  # three POSTs in all: refused, retried, delivered
