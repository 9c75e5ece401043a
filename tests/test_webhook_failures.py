"""One bad webhook never stops deliveries (issue 14: defect A), and deliveries ignore the proxy environment (G)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from tests.conftest import CATALOG, KEY
from tests.webhook_receiver import Receiver

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "p", "image_url": "https://example.com/a.png"}
# Defect A's inputs, as the query string carries them (`%00`, `%0D%0A` decode to NUL and CR LF).
BAD_WEBHOOKS = [
    "http://[",
    "http://127.0.0.1:99999/",
    "http://127.0.0.1:-1/",
    "http://127.0.0.1:abc/",
    "http://127.0.0.1/%00",
    "http://127.0.0.1/a%0D%0AX-Injected:%201",
]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(seed=7, policy="instant", state_dir=tmp_path), catalog=CATALOG)
    with TestClient(app) as client:  # the lifespan runs the delivery loop
        yield client


def submit(client: TestClient, webhook: str) -> Any:
    return client.post(f"/{ENDPOINT}?fal_webhook={webhook}", json=BODY, headers=KEY)


def delivered_to(receiver: Receiver, client: TestClient) -> None:
    """A valid webhook submitted now arrives."""
    request_id = submit(client, receiver.url).json()["request_id"]
    headers, _ = receiver.next()
    assert headers["x-fal-webhook-request-id"] == request_id


@pytest.mark.parametrize("webhook", BAD_WEBHOOKS)
def test_a_a_webhook_that_is_not_an_http_url_is_422_at_submit(
    emulator: TestClient, receiver: Receiver, webhook: str
) -> None:
    answer = submit(emulator, webhook)
    assert answer.status_code == 422
    [item] = answer.json()["detail"]
    assert item["loc"] == ["query", "fal_webhook"] and item["type"] in {"url_parsing", "url_scheme"}
    assert answer.headers["x-fal-request-id"]
    assert emulator.get("/_emulator/requests").json() == []  # nothing was enqueued
    delivered_to(receiver, emulator)


def test_a_a_scheme_other_than_http_is_url_scheme(emulator: TestClient) -> None:
    [item] = submit(emulator, "ftp://127.0.0.1/hook").json()["detail"]
    assert (item["type"], item["msg"]) == ("url_scheme", "URL scheme should be 'http' or 'https'")


@pytest.mark.parametrize("webhook", [url.replace("%00", "\x00").replace("%0D%0A", "\r\n") for url in BAD_WEBHOOKS])
def test_a_a_bad_url_that_reaches_the_loop_is_recorded_and_the_loop_goes_on(
    emulator: TestClient, receiver: Receiver, webhook: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the submit check (a request from an older state, a hand-made watch), delivery still never dies."""
    request_id = emulator.post(f"/{ENDPOINT}", json=BODY, headers=KEY).json()["request_id"]
    webhooks = emulator.app.state.webhooks  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="fal_emulator.webhooks"):
        webhooks.watch(request_id, webhook)
        delivered_to(receiver, emulator)
    deliveries = emulator.get("/_emulator/webhooks").json()
    [bad] = [entry for entry in deliveries if entry["status"] is None]
    assert bad["request_id"] == request_id and bad["error"].endswith("permanent failure")
    assert any("cannot be sent" in record.getMessage() for record in caplog.records)  # logged at once


def test_a_reset_revives_a_delivery_loop_that_ended(emulator: TestClient, receiver: Receiver) -> None:
    webhooks = emulator.app.state.webhooks  # type: ignore[attr-defined]

    async def end_the_loop() -> None:
        task = webhooks.start()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert emulator.portal is not None
    emulator.portal.call(end_the_loop)
    assert not webhooks.running
    assert emulator.post("/_emulator/reset").status_code == 200
    assert webhooks.running
    delivered_to(receiver, emulator)


def test_g_deliveries_ignore_http_proxy(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = Receiver()
    proxy.thread.start()
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url.removesuffix("/hook"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        app = create_app(Settings(seed=7, policy="instant", state_dir=tmp_path), catalog=CATALOG)
        with TestClient(app) as client:
            delivered_to(receiver, client)
        assert proxy.received.empty()
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
