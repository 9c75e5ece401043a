"""Cassettes (HAR 1.2) and the recorder's budget, without a network: redaction, validation, the spend guard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from fal_emulator.cassette import (
    REDACTED,
    CassetteError,
    CassetteWriter,
    entry,
    load_cassette,
    now_iso,
    redact_json,
    redact_url,
)
from fal_emulator.http.recorder import create_recorder_app
from fal_emulator.http.recorder_backend import Recorder, SpendGuard, Upstream
from fal_emulator.record import price_of
from fal_emulator.settings import Settings

KEY = "0b5e8f6c-user-key:3f1d0c9a8b7e6d5c"
CHEAPEST = {"prompt": "a calm lake", "duration": "4s", "resolution": "720p", "generate_audio": False}


def test_signed_urls_and_token_fields_are_redacted() -> None:
    signed = "https://storage.googleapis.com/b/o.mp4?X-Goog-Signature=abc&X-Goog-Credential=k&alt=media"
    assert redact_url(signed) == (
        "https://storage.googleapis.com/b/o.mp4?X-Goog-Signature=[REDACTED]&X-Goog-Credential=[REDACTED]&alt=media"
    )
    assert redact_url("https://v3.fal.media/files/x.mp4") == "https://v3.fal.media/files/x.mp4"
    body = {"token": "t0k3n", "base_url": "https://v3.fal.media", "upload_url": signed, "file_size": 3}
    redacted = {"token": REDACTED, "base_url": "https://v3.fal.media", "upload_url": redact_url(signed), "file_size": 3}
    assert redact_json(body) == redacted


def _submit_entry(key_in_body: str = "") -> dict[str, Any]:
    return entry(
        kind="submit", method="POST", url="https://queue.fal.run/fal-ai/veo3.1/fast",
        request_headers=[("Authorization", f"Key {KEY}"), ("content-type", "application/json")],
        request_body=json.dumps({"prompt": f"hello {key_in_body}"}).encode(), status=200, status_text="OK",
        response_headers=[("content-type", "application/json"), ("x-fal-request-id", "r1")],
        response_body=b'{"status": "IN_QUEUE", "request_id": "r1"}', started=now_iso(), seconds=0.25,
        fal={"endpoint_id": "fal-ai/veo3.1/fast", "request_id": "r1", "offset": 0.0},
    )  # fmt: skip


def test_a_cassette_is_valid_har_and_never_holds_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.har"
    writer = CassetteWriter(path, upstream={"queue": "https://queue.fal.run"}, secrets=[KEY], budget_usd=1.0)
    writer.add(_submit_entry(key_in_body=KEY))  # even a key pasted into a prompt is scrubbed
    writer.add_media("https://v3.fal.media/files/out.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4", "out.mp4")
    assert KEY.encode() not in path.read_bytes()
    log = load_cassette(path)["log"]
    assert (log["version"], log["_fal"]["format"]) == ("1.2", 1)
    headers = {h["name"]: h["value"] for h in log["entries"][0]["request"]["headers"]}
    assert headers["Authorization"] == REDACTED
    (media,) = log["_fal"]["media"]
    assert (path.parent / media["file"]).read_bytes().startswith(b"\x00\x00\x00\x18ftyp")
    assert media["file"] == f"c.media/{media['sha256']}.mp4"


def test_recording_again_into_a_cassette_continues_it(tmp_path: Path) -> None:
    path = tmp_path / "c.har"
    CassetteWriter(path, upstream={"queue": "https://queue.fal.run"}, secrets=[KEY]).add(_submit_entry())
    CassetteWriter(path, upstream={"queue": "https://queue.fal.run"}, secrets=[KEY]).add(_submit_entry())
    assert len(load_cassette(path)["log"]["entries"]) == 2


def test_a_file_that_is_not_a_cassette_is_refused_with_the_place(tmp_path: Path) -> None:
    path = tmp_path / "c.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": []}}))
    with pytest.raises(CassetteError, match="at log: '_fal' is a required property"):
        load_cassette(path)
    path.write_text("{")
    with pytest.raises(CassetteError, match="is not JSON"):
        load_cassette(path)


def test_the_spend_guard_reserves_refunds_and_refuses() -> None:
    guard = SpendGuard(1.00, lambda endpoint_id, arguments: 0.40)
    assert guard.charge("fal-ai/veo3.1/fast", CHEAPEST) == 0.40
    guard.refund(0.40)  # upstream rejected it: nothing generated
    guard.charge("fal-ai/veo3.1/fast", CHEAPEST)
    guard.charge("fal-ai/veo3.1/fast", CHEAPEST)
    assert guard.spent == 0.80
    with pytest.raises(Exception, match=r"would cost about \$0.40 and \$0.80 of --allow-spend \$1.00 is spent"):
        guard.charge("fal-ai/veo3.1/fast", CHEAPEST)


def test_the_recorder_answers_402_past_the_budget_and_sends_nothing(tmp_path: Path) -> None:
    sent: list[httpx.Request] = []

    def fal(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        body = {"status": "IN_QUEUE", "request_id": f"r{len(sent)}", "queue_position": 0}
        return httpx.Response(200, json=body, headers={"x-fal-request-id": f"r{len(sent)}"})

    cassette = CassetteWriter(tmp_path / "c.har", upstream=Upstream().as_dict(), secrets=[KEY], budget_usd=0.5)
    guard = SpendGuard(0.5, price_of(Settings(state_dir=tmp_path)))
    client = httpx.AsyncClient(transport=httpx.MockTransport(fal))
    recorder = Recorder(Upstream(), cassette, KEY, guard, client=client)
    with TestClient(create_recorder_app(recorder), headers={"Authorization": "Key local"}) as http:
        proxied = {"x-fal-target-url": "https://queue.fal.run/fal-ai/veo3.1/fast"}  # @fal-ai/client's proxy mode
        assert http.post("/api/fal/proxy", json=CHEAPEST, headers=proxied).status_code == 200  # $0.40 of $0.50
        refused = http.post("/fal-ai/veo3.1/fast", json=CHEAPEST)
    assert refused.status_code == 402
    assert refused.json()["error_type"] == "spend_limit"
    assert len(sent) == 1 and sent[0].headers["authorization"] == f"Key {KEY}"  # the user's key, not the app's
    assert str(sent[0].url) == "https://queue.fal.run/fal-ai/veo3.1/fast"
    assert "x-fal-target-url" not in sent[0].headers
    log = load_cassette(tmp_path / "c.har")["log"]
    assert len(log["entries"]) == 1 and log["_fal"]["spent_usd"] == 0.4
