"""Durability under load, for every durable store (issue 14, item 6): nothing acknowledged is lost across a
kill -9 in the middle of 2,000 submits from 16 clients (cancels mixed in), and two processes serving one state
agree on every request.

Each test runs once per store in `DURABLE_STORES` (Redis on the session's redis-server, skipped with the
reason when there is none). The figures are printed (`pytest -s`): acknowledged, lost, inconsistent.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fal_emulator.testing import EmulatorProcess
from tests.stores import redis_url
from tests.test_durability import free_port

DURABLE_STORES = ["sqlite", "redis"]
ENDPOINTS = ["fal-ai/veo3/image-to-video", "fal-ai/veo3.1/fast", "fal-ai/veo2"]
BODY = {"prompt": "p", "image_url": "https://example.com/a.png"}
KEY = {"Authorization": "Key k"}
CLIENTS, SUBMITS = 16, 2000
CANCEL_EVERY = 5  # every fifth acknowledged submit is cancelled
POLICY = "timed:3600,3600"  # requests stay queued for the whole test: every state is checkable


@pytest.fixture(params=DURABLE_STORES)
def store(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """`serve` options for an empty durable store (Redis: a fresh database of the session's redis-server)."""
    if request.param == "redis":
        return ("--store", "redis", "--redis-url", redis_url(request))
    return ("--store", request.param)


@dataclass
class Ledger:
    """What the server acknowledged: submits (request id -> app id) and cancels (202); cancels sent whose answer
    never came (either state is right for those); `half_way` is set at `SUBMITS // 2` acknowledged submits."""

    submitted: dict[str, str] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    unsure: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    half_way: threading.Event = field(default_factory=threading.Event)

    def acknowledge(self, request_id: str, app_id: str) -> int:
        with self.lock:
            self.submitted[request_id] = app_id
            count = len(self.submitted)
        if count >= SUBMITS // 2:
            self.half_way.set()
        return count


def base_url(server: EmulatorProcess) -> str:
    assert server.listening is not None
    return server.listening.http_url


def load(next_base: Callable[[], str], ledger: Ledger, index: int, attempts: int) -> None:
    """One client: `attempts` submits (retrying those that got no answer), cancelling every fifth."""
    done = 0
    while done < attempts:
        endpoint = ENDPOINTS[(index + done) % len(ENDPOINTS)]
        try:
            with httpx.Client(base_url=next_base(), headers=KEY, timeout=30, trust_env=False) as http:
                while done < attempts:
                    answer = http.post(f"/{endpoint}", json=BODY)
                    assert answer.status_code == 200, answer.text
                    request_id = answer.json()["request_id"]
                    count = ledger.acknowledge(request_id, "/".join(endpoint.split("/")[:2]))
                    done += 1
                    if count % CANCEL_EVERY == 0:
                        with ledger.lock:
                            ledger.unsure.add(request_id)
                        cancel = http.put(f"/{endpoint}/requests/{request_id}/cancel")
                        assert cancel.status_code == 202, cancel.text
                        with ledger.lock:
                            ledger.unsure.discard(request_id)
                            ledger.cancelled.add(request_id)
                    endpoint = ENDPOINTS[(index + done) % len(ENDPOINTS)]
        except httpx.TransportError:  # the server was killed: try again on the next one
            continue


def check(base: str, ledger: Ledger) -> tuple[int, int]:
    """(lost, inconsistent) acknowledged requests, as the server at `base` sees them now."""
    lost = inconsistent = 0
    positions: dict[str, dict[str, int]] = {}  # app id -> request id -> queue position
    with httpx.Client(base_url=base, headers=KEY, timeout=30, trust_env=False) as http:
        for request_id, app_id in ledger.submitted.items():
            status = http.get(f"/{app_id}/requests/{request_id}/status")
            if status.status_code == 404:
                lost += 1
                continue
            body = status.json()
            if request_id in ledger.unsure:  # cancelled or not: the answer was lost with the server
                continue
            if request_id in ledger.cancelled:
                inconsistent += body["status"] != "COMPLETED" or body.get("error_type") != "client_cancelled"
            elif body["status"] == "IN_QUEUE":
                positions.setdefault(app_id, {})[request_id] = body["queue_position"]
            else:
                inconsistent += 1
        order = [item["request_id"] for item in http.get("/_emulator/requests").json()]  # submit order
    for app_positions in positions.values():  # queued requests of an app: positions rise in submit order
        ranked = [app_positions[request_id] for request_id in order if request_id in app_positions]
        inconsistent += sum(1 for before, after in zip(ranked, ranked[1:], strict=False) if after <= before)
    return lost, inconsistent


def test_kill_9_under_load_loses_nothing_acknowledged(tmp_path: Path, store: tuple[str, ...]) -> None:
    ledger = Ledger()
    args = store
    current = [EmulatorProcess(tmp_path, policy=POLICY, extra_args=args)]
    current[0].start()
    restarted = threading.Event()

    def next_base() -> str:
        if ledger.half_way.is_set():  # a client that lost its connection waits for the new server
            restarted.wait(timeout=120)
        return base_url(current[0])

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(load, next_base, ledger, index, SUBMITS // CLIENTS) for index in range(CLIENTS)]
            assert ledger.half_way.wait(timeout=300), "the load never reached half way"
            current[0].kill()  # kill -9 mid-load: every client sees its connection drop
            acknowledged_before_kill = len(ledger.submitted)
            current[0].stop()
            current[0] = EmulatorProcess(tmp_path, policy=POLICY, extra_args=args)
            current[0].start()
            restarted.set()
            for future in futures:
                future.result()
        lost, inconsistent = check(base_url(current[0]), ledger)
    finally:
        current[0].stop()
    print(f"{store[1]}: kill -9 after {acknowledged_before_kill} acknowledged; {len(ledger.submitted)} acknowledged "
          f"submits ({len(ledger.cancelled)} cancels), {lost} lost, {inconsistent} inconsistent")  # fmt: skip
    assert len(ledger.submitted) == SUBMITS
    assert (lost, inconsistent) == (0, 0)


@contextlib.contextmanager
def factory_process(env: dict[str, str]) -> Iterator[str]:
    """`uvicorn --factory fal_emulator.http.app:create_app` (the README's way to run several processes on one
    state) on a free port; yields its base URL once it has started (its startup line: the signal)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "fal_emulator.http.app:create_app", "--port", str(port),
               "--log-level", "info"]  # fmt: skip
    process = subprocess.Popen(command, env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        for line in process.stderr:
            if "Application startup complete" in line:
                break
        else:
            raise AssertionError("the process ended before it started")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stderr.close()


def test_two_processes_on_one_state_agree(tmp_path: Path, store: tuple[str, ...]) -> None:
    ledger = Ledger()
    env = {"FAL_EMULATOR_STATE_DIR": str(tmp_path), "FAL_EMULATOR_POLICY": POLICY, "FAL_EMULATOR_SEED": "1",
           "FAL_EMULATOR_STORE": store[1]}  # fmt: skip
    if len(store) > 2:
        env["FAL_EMULATOR_REDIS_URL"] = store[3]
    with factory_process(env) as first, factory_process(env) as second:
        bases = [first, second]
        turn = iter(range(10**9))

        def next_base() -> str:
            return bases[next(turn) % 2]

        with ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(load, next_base, ledger, index, 50) for index in range(8)]:
                future.result()
        results = [check(base, ledger) for base in bases]
        views: list[dict[str, Any]] = []
        for base in bases:
            with httpx.Client(base_url=base, headers=KEY, trust_env=False) as http:
                views.append({item["request_id"]: item["status"] for item in http.get("/_emulator/requests").json()})
    print(f"{store[1]}: two processes, {len(ledger.submitted)} acknowledged submits ({len(ledger.cancelled)} cancels); "
          f"lost/inconsistent as seen by each: {results}")  # fmt: skip
    assert results == [(0, 0), (0, 0)]
    assert views[0] == views[1] and set(views[0]) == set(ledger.submitted)
