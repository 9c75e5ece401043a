"""The edge answers bad input in fal's shape, never 500 (issue 14: defects C, D, E and K, by their exact inputs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.testclient import TestClient

from fal_emulator.service import OUTPUT_CACHE_SIZE
from tests.conftest import KEY, SEED_REQUESTS, ClientFactory

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = SEED_REQUESTS[ENDPOINT]
CLIP = "/files/1280x720_8s_audio.mp4"


def bad_request(answer: Any, status: int = 400) -> dict[str, str]:
    """fal's request-error shape: `{"detail", "error_type": "bad_request"}` and `X-Fal-Error-Type`."""
    assert answer.status_code == status, answer.text
    body: dict[str, str] = answer.json()
    assert body["error_type"] == "bad_request" and body["detail"]
    assert answer.headers["x-fal-error-type"] == "bad_request"
    return body


# E: no body cap. A body over `max_body_bytes` is 413, whether it says its size or streams in chunks.


def test_e_a_declared_body_over_the_cap_is_413_before_it_is_read(make_client: ClientFactory) -> None:
    client = make_client(max_body_bytes=1000)
    prompt = {**BODY, "prompt": "x" * 2000}
    answer = client.post(f"/{ENDPOINT}", json=prompt, headers=KEY)
    assert bad_request(answer, 413)["detail"].startswith("Request body is too large: the limit is 1000 bytes")
    assert answer.headers["connection"] == "close" and answer.headers["x-fal-request-id"]
    assert client.get("/_emulator/requests").json() == []
    assert client.post(f"/{ENDPOINT}", json=BODY, headers=KEY).status_code == 200


def test_e_a_streamed_body_is_cut_at_the_cap(make_client: ClientFactory) -> None:
    """(Over a real socket, tests/test_connections.py shows the server stops reading at the cap.)"""
    client = make_client(max_body_bytes=64 * 1024)

    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to refuse up front
        yield json.dumps(BODY)[:-1].encode() + b', "pad": "'
        for _ in range(10):
            yield b"x" * (16 * 1024)
        yield b'"}'

    bad_request(client.post(f"/{ENDPOINT}", content=chunks(), headers=KEY), 413)
    for path in ("/storage/upload/initiate", "/_emulator/outcomes", "/files/upload"):
        assert client.post(path, content=b"x" * (64 * 1024 + 1), headers=KEY).status_code == 413, path


def test_e_the_default_cap_takes_an_8_mb_image_inline() -> None:
    from fal_emulator.settings import Settings

    eight_mb_as_data_uri = len("data:image/png;base64,") + 4 * (8 * 1024 * 1024 + 2) // 3
    assert Settings().max_body_bytes > 3 * eight_mb_as_data_uri  # reference-to-video takes three images


# C: other 500s.


def test_c_fal_max_queue_length_must_be_a_small_whole_number(client: TestClient) -> None:
    for value in ("²", "9" * 5000, "-1", "1.5", "٣"):
        answer = client.post(f"/{ENDPOINT}", params={"fal_max_queue_length": value}, json=BODY, headers=KEY)
        assert "fal_max_queue_length" in bad_request(answer)["detail"]
    assert client.post(f"/{ENDPOINT}?fal_max_queue_length=5", json=BODY, headers=KEY).status_code == 200


def test_c_an_unparsable_proxy_target_is_400(client: TestClient) -> None:
    for target in ("http://[", "http://queue.fal.run:99999/x", "not a url"):
        answer = client.post("/api/fal/proxy", json=BODY, headers={**KEY, "x-fal-target-url": target})
        assert "x-fal-target-url" in bad_request(answer)["detail"]
    proxied = {**KEY, "x-fal-target-url": f"https://queue.fal.run/{ENDPOINT}"}
    assert client.post("/api/fal/proxy", json=BODY, headers=proxied).status_code == 200


def test_c_a_range_end_of_5000_digits_is_the_whole_clip(client: TestClient) -> None:
    size = len(client.get(CLIP).content)
    answer = client.get(CLIP, headers={"Range": "bytes=0-" + "9" * 5000})
    assert answer.status_code == 206 and len(answer.content) == size
    assert answer.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
    assert client.get(CLIP, headers={"Range": "bytes=" + "9" * 5000 + "-"}).status_code == 416


def test_c_upload_initiate_type_checks_file_name_and_content_type(client: TestClient) -> None:
    cases = [
        ({"file_name": 123, "content_type": "image/png"}, ["body", "file_name"], "string_type"),
        ({"file_name": ["a"]}, ["body", "file_name"], "string_type"),
        ({"file_name": "a.png", "content_type": 123}, ["body", "content_type"], "string_type"),
        ({"file_name": "a.png", "content_type": {}}, ["body", "content_type"], "string_type"),
        ({"file_name": "a.png", "content_type": "image/png☃"}, ["body", "content_type"], "value_error"),
        ({"file_name": "a.png", "content_type": "image/png\r\nX-Injected: 1"}, ["body", "content_type"], "value_error"),
    ]
    for payload, loc, kind in cases:
        answer = client.post("/storage/upload/initiate", json=payload, headers=KEY)
        assert answer.status_code == 422, payload
        [item] = answer.json()["detail"]
        assert (item["loc"], item["type"]) == (loc, kind)
    for content_type in ("image/png☃".encode(), b"123"):
        headers = {b"Authorization": KEY["Authorization"].encode(), b"Content-Type": content_type,
                   b"X-Fal-File-Name": b"a.png"}  # fmt: skip
        assert client.post("/files/upload", content=b"x", headers=headers).status_code == 422


def test_c_fail_with_a_list_or_an_object_is_400(client: TestClient) -> None:
    request_id = client.post(f"/{ENDPOINT}", json=BODY, headers=KEY).json()["request_id"]
    bodies: list[Any] = [[], {"error_type": []}, {"error_type": {}}, {"error_type": 5}]
    for body in bodies:
        bad_request(client.post(f"/_emulator/requests/{request_id}/fail", json=body))
    for seed in ("x", -1, 1.5):
        bad_request(client.post("/_emulator/reset", json={"seed": seed}))
    bad_request(client.put("/_emulator/policy", json={"policy": "instant", "endpoint_id": ["x"]}))
    bad_request(client.post("/_emulator/outcomes", json={"endpoint_id": 3, "outcomes": ["ok"]}))
    bad_request(client.put(f"/_emulator/requests/{request_id}/policy", json={"policy": 1}))
    assert client.post(f"/_emulator/requests/{request_id}/fail", json={}).status_code == 200


def test_a_bad_host_header_is_400_and_never_echoed(client: TestClient) -> None:
    for host in ("evil.com:99999", "a b", "x/y"):
        answer = client.post(f"/{ENDPOINT}", json=BODY, headers={**KEY, "Host": host})
        assert "Host" in bad_request(answer)["detail"]


# D: PUT to another name wrote the bytes into the upload.


def test_d_a_put_to_another_name_writes_nothing(client: TestClient) -> None:
    urls = client.post("/storage/upload/initiate", json={"file_name": "cat.png", "content_type": "image/png"},
                       headers=KEY).json()  # fmt: skip
    upload_id = urls["upload_url"].split("/")[-2]
    html = {"Content-Type": "text/html"}
    wrong = client.put(f"/storage/upload/{upload_id}/wrong.png", content=b"<script>", headers=html)
    assert wrong.status_code == 404
    assert client.get(urls["file_url"]).status_code == 404  # nothing was written
    assert client.get(f"/files/uploads/{upload_id}/wrong.png").status_code == 404
    put = client.put(urls["upload_url"], content=b"\x89PNG", headers={"Content-Type": "text/html"})
    assert put.status_code == 200
    served = client.get(urls["file_url"])
    assert served.content == b"\x89PNG"
    assert served.headers["content-type"] == "image/png"  # the initiated type, not the PUT's
    assert served.headers["x-content-type-options"] == "nosniff"


# K: the output cache was keyed by Host without bound, and reset kept it.


def test_k_the_output_cache_is_bounded_and_reset_clears_it(make_client: ClientFactory) -> None:
    client = make_client(policy="instant")
    emulator = client.app.state.emulator  # type: ignore[attr-defined]
    for index in range(OUTPUT_CACHE_SIZE + 20):
        host = {"Host": f"h{index}.test:8470"}
        assert client.post(f"/{ENDPOINT}", json=BODY, headers={**KEY, **host}).status_code == 200
    assert emulator.cached_outputs == OUTPUT_CACHE_SIZE
    client.post("/_emulator/reset")
    assert emulator.cached_outputs == 0
