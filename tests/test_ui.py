"""The dashboard's data and routes, in-process (both stores): the control plane's JSON that the page shows
(filters, pages, timeline, totals, cancel, scenarios, webhook signatures), prices read without the contract
kit, access with the control token, input images. The page in a real browser: tests/test_ui_browser.py."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image
from starlette.testclient import TestClient

from fal_emulator.catalog import load_catalog
from fal_emulator.settings import Settings
from fal_emulator.ui.model import signature_valid
from fal_emulator.ui.prices import load_prices
from tests.conftest import KEY, SEED_REQUESTS, ClientFactory
from tests.test_storage import initiate_and_put
from tests.test_webhooks import emulator  # noqa: F401 (fixture)
from tests.webhook_receiver import Receiver

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = SEED_REQUESTS[ENDPOINT]


def png_data_uri(width: int = 64, height: int = 48) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(buffer, format="PNG")
    data = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode(), data


def submit(client: TestClient, scenario: str | None = None, body: dict[str, Any] | None = None) -> str:
    headers = {**KEY, **({"X-Fal-Emulator-Scenario": scenario} if scenario else {})}
    response = client.post(f"/{ENDPOINT}", json=body or BODY, headers=headers)
    assert response.status_code == 200, response.text
    request_id: str = response.json()["request_id"]
    return request_id


def rows(client: TestClient, **query: Any) -> list[dict[str, Any]]:
    response = client.get("/_emulator/requests", params=query)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def test_the_list_filters_by_endpoint_status_and_error_type_and_pages_newest_first(make_client: ClientFactory) -> None:
    client = make_client(policy="instant")
    ok = [submit(client) for _ in range(3)]
    failed = [submit(client, "content_policy_violation") for _ in range(2)]
    assert [row["request_id"] for row in rows(client)] == ok + failed  # unpaged: every request, oldest first
    paged = client.get("/_emulator/requests", params={"limit": 2})
    assert [row["request_id"] for row in paged.json()] == failed[::-1]
    assert paged.headers["x-total-count"] == "5"
    assert [row["request_id"] for row in rows(client, limit=2, offset=2)] == ok[::-1][:2]
    rejected = rows(client, error_type="content_policy_violation")
    assert {row["request_id"] for row in rejected} == set(failed)
    assert {(row["status"], row["status_code"], row["scenario"]) for row in rejected} == {
        ("COMPLETED", 422, "content_policy_violation")
    }
    assert [row["request_id"] for row in rows(client, error_type="ok")] == ok
    assert len(rows(client, error_type="error")) == 2
    assert rows(client, status="IN_QUEUE") == [] and len(rows(client, status="COMPLETED")) == 5
    assert rows(client, endpoint_id="fal-ai/veo2/image-to-video") == []
    assert {row["price_usd"] for row in rows(client)} == {6.0}  # 8 s of Veo 3 with audio at $0.75/s
    for bad in ({"status": "FAILED"}, {"limit": "x"}, {"offset": "-1"}):
        assert client.get("/_emulator/requests", params=bad).status_code == 400


def test_rows_are_up_to_date_with_queue_positions_and_a_timeline_on_the_clock(make_client: ClientFactory) -> None:
    client = make_client(policy="timed:10,60")
    start = client.post("/_emulator/clock", json={"freeze": True}).json()["now"]
    first, second = submit(client), submit(client)
    assert [(row["status"], row["queue_position"]) for row in rows(client)] == [("IN_QUEUE", 0), ("IN_QUEUE", 1)]
    client.post("/_emulator/clock", json={"advance": 10})
    assert [row["status"] for row in rows(client)] == ["IN_PROGRESS", "IN_PROGRESS"]  # nobody polled them
    detail = client.get(f"/_emulator/requests/{first}").json()
    assert [(step["status"], step["seconds"], step["current"]) for step in detail["timeline"]] == [
        ("IN_QUEUE", 10.0, False),
        ("IN_PROGRESS", 0.0, True),
    ]
    client.post("/_emulator/clock", json={"advance": 60})
    detail = client.get(f"/_emulator/requests/{second}").json()
    assert [(s["status"], s["offset_seconds"], s["seconds"]) for s in detail["timeline"]] == [
        ("IN_QUEUE", 0.0, 10.0),
        ("IN_PROGRESS", 10.0, 60.0),
        ("COMPLETED", 70.0, None),
    ]
    assert detail["timeline"][0]["at"] == pytest.approx(start)
    assert detail["timeline"][-1]["outcome"] == "OK"
    assert detail["age_seconds"] == pytest.approx(70)


def test_totals_count_statuses_and_errors_and_sum_the_spend_avoided(make_client: ClientFactory) -> None:
    client = make_client(policy="timed:10,60")
    client.post("/_emulator/clock", json={"freeze": True})
    submit(client)
    submit(client, "content_policy_violation")
    submit(client, "manual")
    client.post("/_emulator/clock", json={"advance": 70})
    totals = client.get("/_emulator/totals").json()
    assert totals == {
        "requests": 3,
        "by_status": {"IN_QUEUE": 1, "IN_PROGRESS": 0, "COMPLETED": 2},
        "by_error_type": {"content_policy_violation": 1},
        "median_seconds": {"IN_QUEUE": 10.0, "IN_PROGRESS": 60.0},
        "succeeded": 1,
        "spend_avoided_usd": 6.0,  # the failed request is not billed
        "unpriced": 0,
    }


def test_cancel_through_the_control_plane_completes_the_request_as_cancelled(make_client: ClientFactory) -> None:
    client = make_client(policy="manual")
    request_id = submit(client)
    cancelled = client.post(f"/_emulator/requests/{request_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "COMPLETED"
    status = client.get(f"/fal-ai/veo3/requests/{request_id}/status", headers=KEY).json()
    assert status["error_type"] == "client_cancelled"
    assert client.post(f"/_emulator/requests/{request_id}/cancel").status_code == 409


def test_the_scenario_a_request_met_is_kept_with_it(make_client: ClientFactory) -> None:
    client = make_client(policy="manual")
    client.post("/_emulator/outcomes", json={"endpoint_id": ENDPOINT, "outcomes": ["timed:1,2", "ok"]})
    scripted, plain = submit(client), submit(client)
    header = submit(client, "content_policy_violation,latency:0,truncate")
    scenarios = {row["request_id"]: row["scenario"] for row in rows(client)}
    assert scenarios == {scripted: "timed:1,2", plain: None, header: "content_policy_violation,latency:0,truncate"}


def test_webhook_attempts_carry_their_signature_which_verifies_with_the_jwks(
    emulator: TestClient,  # noqa: F811
    receiver: Receiver,
) -> None:
    response = emulator.post(f"/{ENDPOINT}", params={"fal_webhook": receiver.url}, json=BODY, headers=KEY)
    request_id = response.json()["request_id"]
    headers, _ = receiver.next()
    for _ in range(100_000):  # the attempt is recorded right after the receiver answered
        if attempts := emulator.get(f"/_emulator/requests/{request_id}").json()["webhooks"]:
            break
    [attempt] = attempts
    assert attempt["status"] == 200 and attempt["signature_valid"] is True
    assert attempt["headers"]["X-Fal-Webhook-Signature"] == headers["x-fal-webhook-signature"]
    jwks = emulator.get("/.well-known/jwks.json").json()
    forged = {**attempt, "body_sha256": "0" * 64}
    assert signature_valid(forged, jwks) is False
    assert signature_valid({"request_id": request_id, "error": "target not allowed"}, jwks) is None
    [journaled] = emulator.get("/_emulator/journal", params={"kind": "webhook"}).json()
    assert journaled["headers"]["x-fal-webhook-signature"] == "***"  # redacted in the journal


def test_prices_come_from_prices_yaml_without_importing_the_contract_kit() -> None:
    code = (
        "import sys; from fal_emulator.ui.prices import load_prices; assert load_prices().price_list.rates; "
        "assert not {'schemathesis', 'hypothesis', 'fal_emulator.contracts'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    catalog, prices = load_catalog(), load_prices()
    veo31 = catalog.get("fal-ai/veo3.1")
    assert veo31 is not None
    assert prices.cost(veo31, {"resolution": "4k", "duration": "8s", "generate_audio": True}) == 4.8  # $0.60/s
    assert prices.cost(veo31, {"duration": "4s", "generate_audio": False}) == 0.8  # 720p by default, $0.20/s
    assert prices.cost(veo31, {"duration": "forever"}) is None
    assert prices.cost(veo31, {"duration": ["8s"]}) is None


def test_the_page_needs_the_control_token_when_one_is_set(make_client: ClientFactory) -> None:
    client = make_client(control_token="secret-token")
    refused = client.get("/_emulator/ui")
    assert refused.status_code == 401 and "?token=" in refused.text
    assert client.get("/_emulator/ui?token=wrong").status_code == 401
    opened = client.get("/_emulator/ui?status=COMPLETED&token=secret-token", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/_emulator/ui?status=COMPLETED"
    cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/_emulator/ui" in cookie
    page = client.get("/_emulator/ui")  # the cookie now
    assert page.status_code == 200 and '<meta name="fal-emulator-token" content="secret-token">' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert client.get("/_emulator/ui/requests").status_code == 200
    client.cookies.clear()
    for path in ("/_emulator/ui/requests", "/_emulator/ui/events", "/_emulator/ui/requests/x"):
        assert client.get(path).status_code == 401
    assert client.get("/_emulator/ui", headers={"X-Fal-Emulator-Token": "secret-token"}).status_code == 200
    # The control plane takes only the header: the dashboard's cookie cannot drive it from another site.
    assert client.post("/_emulator/reset", headers={"Cookie": "fal_emulator_token=secret-token"}).status_code == 401


def test_without_a_token_the_page_is_open_and_carries_none(client: TestClient) -> None:
    page = client.get("/_emulator/ui")
    assert page.status_code == 200 and "fal-emulator-token" not in page.text
    assert client.get("/_emulator/ui/static/htmx-2.0.11.min.js").status_code == 200
    assert client.get("/_emulator/ui/static/LICENSE.htmx.txt").text.startswith("htmx 2.0.11")


def test_one_request_shows_its_input_images_output_and_journal(make_client: ClientFactory) -> None:
    client = make_client(policy="instant", render="off")  # completed at once (a rendered video: test_render_*)
    uri, data = png_data_uri()
    _, uploaded = png_data_uri(32, 32)
    file_url = initiate_and_put(client, uploaded, "frame.png", "image/png")
    body = {**BODY, "prompt": "<script>alert(1)</script>", "image_url": uri}
    request_id = submit(client, body=body)
    other = submit(client, body={**BODY, "image_url": file_url})
    page = client.get("/_emulator/ui", params={"request": request_id})
    assert page.status_code == 200
    assert f'src="/_emulator/ui/requests/{request_id}/images/0"' in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    assert f"… ({len(uri):,} characters)" in page.text  # the data: URI is shortened, not dumped
    assert '<video id="video-' in page.text and 'src="/files/' in page.text  # played from this origin
    assert f"POST /{ENDPOINT}" in page.text  # its journal entry
    image = client.get(f"/_emulator/ui/requests/{request_id}/images/0")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png" and image.content == data
    assert client.get(f"/_emulator/ui/requests/{request_id}/images/1").status_code == 404
    assert client.get(f"/_emulator/ui/requests/{other}/images/0").content == uploaded
    gone = client.get("/_emulator/ui/requests/not-a-request")
    assert gone.status_code == 200 and "is not stored" in gone.text


def test_the_live_list_fragment_updates_the_totals_and_state_too(make_client: ClientFactory) -> None:
    client = make_client(policy="instant")
    submit(client, "content_policy_violation")
    fragment = client.get("/_emulator/ui/requests", params={"error_type": "error", "offset": "junk"}).text
    assert 'id="totals" class="totals" hx-swap-oob="true"' in fragment
    assert 'id="state" class="state" hx-swap-oob="true"' in fragment
    assert "1–1 of 1" in fragment and "content_policy_violation" in fragment


def test_output_videos_play_from_the_page_s_own_origin_only_for_this_emulator(make_client: ClientFactory) -> None:
    client = make_client(policy="instant", public_url="https://emulator.example:9443")
    request_id = submit(client)
    page = client.get("/_emulator/ui", params={"request": request_id}).text
    assert 'src="/files/1280x720_8s_audio.mp4"' in page  # the public URL's host is this emulator's
    assert 'href="/files/1280x720_8s_audio.mp4"' in page


def test_local_url_keeps_other_hosts_out_of_the_page() -> None:
    from starlette.requests import Request

    from fal_emulator.ui.render import local_url

    app = SimpleNamespace(state=SimpleNamespace(emulator=SimpleNamespace(settings=Settings())))
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", b"emu.test:8470")], "app": app,
             "query_string": b"", "scheme": "http", "server": ("emu.test", 8470)}  # fmt: skip
    request = Request(scope)
    assert local_url("https://emu.test:8471/files/a.mp4?fault=slow", request) == "/files/a.mp4?fault=slow"
    assert local_url("http://127.0.0.1:1/files/a.mp4", request) == "/files/a.mp4"
    assert local_url("https://v3.fal.media/files/a.mp4", request) == "/files/a.mp4"  # proxy mode: served here
    assert local_url("https://cdn.example.com/files/a.mp4", request) is None
    assert local_url("https://emu.test/elsewhere/a.mp4", request) is None


def test_inputs_the_runner_refused_show_as_failed_even_when_not_an_object(make_client: ClientFactory) -> None:
    """fal's queue takes any JSON body; the runner's 422 names no error type, so the page reads its status."""
    client = make_client(policy="instant")
    refused = submit(client, body={"prompt": "no image"})
    for raw in (b"null", b"[1]"):
        answer = client.post(f"/{ENDPOINT}", content=raw, headers={**KEY, "Content-Type": "application/json"})
        assert answer.status_code == 200
    listed = [(row["status_code"], row["error_type"], row["price_usd"] is None) for row in rows(client)]
    assert listed == [(422, None, False), (422, None, True), (422, None, True)]  # an object is priced, null and [1] not
    detail = client.get(f"/_emulator/requests/{refused}").json()
    assert detail["timeline"][-1]["outcome"] == "HTTP 422"
    assert client.get("/_emulator/totals").json()["by_error_type"] == {"HTTP 422": 3}
    assert len(rows(client, error_type="error")) == 3
    page = client.get("/_emulator/ui", params={"request": refused})
    assert page.status_code == 200
    assert '<span class="error-type">HTTP 422</span>' in page.text  # the row says it failed
    assert page.text.count('class="number unbilled"') == 3  # its price is struck: not in the spend avoided
    assert "HTTP 422</p>" in page.text and "None" not in page.text  # the detail names no error type it lacks
    assert client.get("/_emulator/ui/requests").status_code == 200


@pytest.mark.parametrize("path", ["/_emulator/requests", "/_emulator/ui", "/_emulator/ui/requests"])
def test_an_offset_past_any_list_is_an_empty_page_not_a_500(make_client: ClientFactory, path: str) -> None:
    """`?offset=` with thousands of digits (Python's int() refuses 4,300+) reads as past the end of the list."""
    client = make_client(policy="instant")
    submit(client, body={"prompt": "p"})
    answer = client.get(path, params={"offset": "9" * 5000, "limit": "5"})
    assert answer.status_code == 200
    if path == "/_emulator/requests":
        assert answer.json() == [] and answer.headers["X-Total-Count"] == "1"
