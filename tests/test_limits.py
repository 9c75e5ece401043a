"""The input-limits policy (`fal_emulator.limits`): JSON nesting and number sizes, URLs, headers, media types;
and every store keeps any value within the limits (issue 14, defect B)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.limits import (
    MAX_JSON_DEPTH,
    MAX_NUMBER_CHARS,
    JsonLimitError,
    authority_problem,
    header_problem,
    json_depth,
    load_json,
    media_type_problem,
    url_problem,
)
from fal_emulator.queue import Outcome, Policy, Request
from fal_emulator.settings import Settings
from tests.conftest import CATALOG, KEY, SEED_REQUESTS, ClientFactory
from tests.stores import STORES, make_store

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = SEED_REQUESTS[ENDPOINT]


def nested(depth: int) -> str:
    """A JSON object whose `extra` field nests lists so that the document is `depth` levels deep."""
    return '{"extra": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def body_nested(depth: int) -> bytes:
    """The seed request with an extra field, nested `depth` levels deep in all (the body's object included)."""
    return json.dumps(BODY)[:-1].encode() + b', "extra": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_json_depth_is_measured_without_recursion() -> None:
    assert json_depth(1) == 0
    assert json_depth({"a": [1, {"b": []}]}) == 4
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) == 100_001


def test_load_json_keeps_to_the_limits() -> None:
    assert json_depth(load_json(nested(MAX_JSON_DEPTH))) == MAX_JSON_DEPTH
    with pytest.raises(JsonLimitError, match="over the limit of 64"):
        load_json(nested(MAX_JSON_DEPTH + 1))
    with pytest.raises(JsonLimitError, match="nesting"):
        load_json("[" * 1_000_000 + "]" * 1_000_000)
    assert load_json("9" * MAX_NUMBER_CHARS) == int("9" * MAX_NUMBER_CHARS)
    for text in ("9" * (MAX_NUMBER_CHARS + 1), "9" * 5000, "1e999", "NaN", "-Infinity", "0." + "1" * 200):
        with pytest.raises(JsonLimitError):
            load_json(text)
    with pytest.raises(UnicodeError):
        load_json('"\\ud800"')


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:8000/hook", None),
        ("https://user:pw@hooks.example.com/x?token=1", None),
        ("http://[::1]:9/x", None),
        ("http://[", "cannot be parsed"),
        ("http://127.0.0.1:99999/", "cannot be parsed"),
        ("http://127.0.0.1:-1/", "cannot be parsed"),
        ("http://127.0.0.1:abc/", "cannot be parsed"),
        ("http://127.0.0.1:0/", "port is 0"),
        ("http://127.0.0.1/\x00", "control characters"),
        ("http://127.0.0.1/a\r\nX-Injected: 1", "control characters"),
        ("http://%00/", "host"),
        ("http:///nohost", "no host"),
        ("ftp://127.0.0.1/", "scheme"),
        ("/relative", "scheme"),
    ],
)
def test_url_problem(url: str, problem: str | None) -> None:
    found = url_problem(url)
    assert found is None if problem is None else problem in str(found)


def test_header_media_type_and_authority_problems() -> None:
    assert header_problem("image/png") is None
    assert header_problem("image/png\r\nSet-Cookie: x") is not None
    assert header_problem("image/png☃") is not None
    assert media_type_problem("image/png") is None
    assert media_type_problem('text/plain; charset="utf-8"') is None
    for bad in ("123", "image/png☃", "image/png\r\nX: y", "png", "a/b/c"):
        assert media_type_problem(bad) is not None
    assert authority_problem("127.0.0.1:8470") is None
    assert authority_problem("localhost") is None
    for bad in ("evil.com:99999", "a b", "x/y", "u@host", "[", "h:abc"):
        assert authority_problem(bad) is not None


def request_with(value: Any) -> Request:
    return Request(
        request_id="r1", endpoint_id=ENDPOINT, app_id="fal-ai/veo3", input={"extra": value, "n": 1},
        outcome=Outcome.success({"video": {"url": "http://x/v.mp4"}}), policy=Policy("manual"),
        submitted_at=1.0, sequence=1,
    )  # fmt: skip


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each store of `tests.stores.STORES`: the limits below must hold for every one."""
    made = make_store(request.param, tmp_path, request)
    yield made
    if hasattr(made, "close"):
        made.close()


def test_every_store_keeps_any_value_within_the_limits(store: Any) -> None:
    deepest = load_json(nested(MAX_JSON_DEPTH - 1))  # the input object adds one level
    largest = load_json("-" + "9" * (MAX_NUMBER_CHARS - 1))
    request = request_with([deepest, largest, 1.5e308, "\u2603" * 10])
    with store.transaction():
        store.add(request)
        store.schedule(request, 0.0, "finish")
    with store.transaction():
        assert store.get("r1").input == request.input
        due = store.next_due(1.0)
    assert due is not None and due.request is not None and due.request.input == request.input


def test_b_a_body_nested_past_the_limit_is_422_and_never_stored(make_client: ClientFactory, tmp_path: Path) -> None:
    """Defect B's input (958-965 levels deep) is refused at the edge on every store, so it can neither fail
    the submit (encode) nor poison later submits (decode on wake-up), before or after a restart."""
    client = make_client(policy="timed:1,1")
    for depth in (958, 961, 965, MAX_JSON_DEPTH + 1):
        answer = client.post(f"/{ENDPOINT}", content=body_nested(depth), headers=KEY)
        assert answer.status_code == 422, depth
        [item] = answer.json()["detail"]
        assert (item["type"], item["loc"]) == ("json_invalid", ["body", 0])
        assert "limit of 64" in item["ctx"]["error"] or "nesting" in item["ctx"]["error"]
    assert client.get("/_emulator/requests").json() == []
    assert client.post(f"/{ENDPOINT}", content=body_nested(MAX_JSON_DEPTH), headers=KEY).status_code == 200
    assert client.post(f"/{ENDPOINT}", json=BODY, headers=KEY).status_code == 200
    [deepest, _] = client.get("/_emulator/requests").json()
    assert json_depth(client.get(f"/_emulator/requests/{deepest['request_id']}").json()["input"]) == MAX_JSON_DEPTH


def test_b_a_restart_then_a_normal_submit_is_200(tmp_path: Path) -> None:
    settings = Settings(seed=7, policy="timed:0,0", state_dir=tmp_path, store="sqlite")
    with TestClient(create_app(settings, catalog=CATALOG)) as first:
        assert first.post(f"/{ENDPOINT}", content=body_nested(960), headers=KEY).status_code == 422
        assert first.post(f"/{ENDPOINT}", content=body_nested(MAX_JSON_DEPTH), headers=KEY).status_code == 200
    with TestClient(create_app(settings, catalog=CATALOG)) as second:
        answer = second.post(f"/{ENDPOINT}", json=BODY, headers=KEY)
        assert answer.status_code == 200
        assert second.get(f"/fal-ai/veo3/requests/{answer.json()['request_id']}", headers=KEY).status_code == 200


def test_numbers_past_the_limit_are_422_json_invalid(client: TestClient) -> None:
    for number in ("9" * 5000, "1" + "0" * MAX_NUMBER_CHARS, "1e999"):
        raw = json.dumps(BODY)[:-1] + f', "seed": {number}}}'
        answer = client.post(f"/{ENDPOINT}", content=raw.encode(), headers=KEY)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["type"] == "json_invalid"


def test_the_control_plane_and_storage_read_json_within_the_same_limits(client: TestClient) -> None:
    answer = client.post("/_emulator/outcomes", content=nested(MAX_JSON_DEPTH + 1).encode())
    assert answer.status_code == 400 and "limit of 64" in answer.json()["detail"]
    answer = client.post("/storage/upload/initiate", content=nested(965).encode(), headers=KEY)
    assert answer.status_code == 400 and answer.json()["error_type"] == "bad_request"
