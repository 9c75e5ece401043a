"""The generated videos are served like a CDN serves them: whole, by Range, with a stable ETag."""

from __future__ import annotations

from starlette.testclient import TestClient

from fal_emulator.media import MediaLibrary
from fal_emulator.paths import FIXTURES_DIR

CLIP = "1280x720_8s_audio.mp4"


def clip_size() -> int:
    found = MediaLibrary(FIXTURES_DIR).by_name(CLIP)
    assert found is not None
    return found.file_size


def test_a_clip_downloads_whole_with_content_length_equal_to_file_size(client: TestClient) -> None:
    response = client.get(f"/files/{CLIP}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == clip_size() == len(response.content)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content[4:8] == b"ftyp"


def test_a_range_request_gets_206_with_that_slice(client: TestClient) -> None:
    whole = client.get(f"/files/{CLIP}").content
    response = client.get(f"/files/{CLIP}", headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 100-199/{clip_size()}"
    assert response.content == whole[100:200]


def test_an_unsatisfiable_range_is_416(client: TestClient) -> None:
    response = client.get(f"/files/{CLIP}", headers={"Range": f"bytes={clip_size() + 10}-"})
    assert response.status_code == 416


def test_the_etag_is_the_clip_digest_and_revalidates_to_304(client: TestClient) -> None:
    etag = client.get(f"/files/{CLIP}").headers["etag"]
    assert len(etag.strip('"')) == 64
    assert client.get(f"/files/{CLIP}", headers={"If-None-Match": etag}).status_code == 304


def test_head_gives_the_headers_without_the_body(client: TestClient) -> None:
    response = client.head(f"/files/{CLIP}")
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == clip_size()
    assert response.content == b""


def test_an_unknown_file_is_404_json(client: TestClient) -> None:
    response = client.get("/files/nope.mp4")
    assert response.status_code == 404
    assert response.json() == {"detail": "File nope.mp4 not found"}


def test_a_malformed_or_reversed_range_is_ignored(client: TestClient) -> None:
    for value in ("bytes=abc", "bytes=5-1", "items=0-1"):
        response = client.get(f"/files/{CLIP}", headers={"Range": value})
        assert response.status_code == 200
        assert len(response.content) == clip_size()


def test_weak_and_star_if_none_match_revalidate(client: TestClient) -> None:
    etag = client.get(f"/files/{CLIP}").headers["etag"]
    for value in (f"W/{etag}", "*", f'"other", {etag}'):
        assert client.get(f"/files/{CLIP}", headers={"If-None-Match": value}).status_code == 304
    assert client.get(f"/files/{CLIP}", headers={"If-None-Match": '"other"'}).status_code == 200
