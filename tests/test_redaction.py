"""Secrets in URLs, headers and query strings are redacted wherever they are kept (issue 14: defects I and J)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.journal import redact, redact_query, redact_url
from fal_emulator.settings import Settings
from fal_emulator.tls import ensure_tls
from fal_emulator.webhooks import Signer
from tests.conftest import CATALOG, KEY
from tests.webhook_receiver import Receiver

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "p", "image_url": "https://example.com/a.png"}
SECRET = "pw-53cr3t"


def test_redact_url_query_and_headers() -> None:
    assert redact_url(f"https://u:{SECRET}@h.example/x?token={SECRET}&a=1") == "https://u:***@h.example/x?token=***&a=1"
    assert redact_url("http://[") == "***"  # never raises (defect A's input)
    assert redact_url("https://h.example/x") == "https://h.example/x"
    query = redact_query(f"fal_webhook=https%3A%2F%2Fu%3A{SECRET}%40h%2Fhook&api_key={SECRET}&logs=1")
    assert SECRET not in query and "logs=1" in query and "u:***@h" in query
    target = f"https://u:{SECRET}@queue.fal.run/a"
    headers = redact([("Authorization", f"Key {SECRET}"), ("X-My-Api-Token", SECRET), ("X-Session", SECRET),
                      ("x-fal-target-url", target), ("X-Fal-Request-Timeout", "30")])  # fmt: skip
    assert SECRET not in str(headers)
    assert headers["authorization"] == "Key ***" and headers["x-fal-request-timeout"] == "30"


def test_i_a_webhook_password_is_kept_nowhere_but_used_to_deliver(tmp_path: Path, receiver: Receiver) -> None:
    app = create_app(Settings(seed=7, policy="instant", state_dir=tmp_path, store="sqlite"), catalog=CATALOG)
    hook = receiver.url.replace("http://", f"http://hooks:{SECRET}@") + f"?secret={SECRET}"
    with TestClient(app) as client:
        target = {**KEY, "x-fal-target-url": f"https://user:{SECRET}@queue.fal.run/{ENDPOINT}?token={SECRET}",
                  "X-Api-Token": SECRET}  # fmt: skip
        proxied = client.post("/api/fal/proxy", json=BODY, headers=target)
        assert proxied.status_code == 200
        answer = client.post(f"/{ENDPOINT}", params={"fal_webhook": hook}, json=BODY, headers=KEY)
        request_id = answer.json()["request_id"]
        headers, _ = receiver.next()
        # Delivered with the credentials the URL carries (HTTP Basic), as fal would.
        assert headers["authorization"] == "Basic " + base64.b64encode(f"hooks:{SECRET}".encode()).decode()
        detail = client.get(f"/_emulator/requests/{request_id}").json()
        assert detail["webhook_url"] == receiver.url.replace("http://", "http://hooks:***@") + "?secret=***"
        kept = [client.get("/_emulator/journal").text, client.get("/_emulator/webhooks").text, str(detail)]
    for text in kept:
        assert SECRET not in text
    store_files = b"".join(path.read_bytes() for path in tmp_path.glob("emulator.sqlite3*"))
    assert b"hooks:" in store_files and SECRET.encode() not in store_files


def test_j_key_files_are_0600(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "server.pem").write_text("old")
    (tmp_path / "tls" / "server.pem").chmod(0o644)
    files = ensure_tls(tmp_path)
    for path in (files.server_cert, files.server_key, tmp_path / "tls" / "ca-key.pem"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert b"PRIVATE KEY" in path.read_bytes()
    Signer(tmp_path)
    assert stat.S_IMODE((tmp_path / "webhook-key.pem").stat().st_mode) == 0o600
