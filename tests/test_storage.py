"""fal's two upload flows; uploaded files are served back and accepted (and checked) as inputs."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from starlette.testclient import TestClient

from tests.conftest import KEY, ClientFactory


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "navy").save(buffer, "PNG")
    return buffer.getvalue()


def initiate_and_put(client: TestClient, data: bytes, name: str, content_type: str) -> str:
    initiated = client.post(
        "/storage/upload/initiate",
        params={"storage_type": "fal-cdn-v3"},
        json={"file_name": name, "content_type": content_type},
        headers=KEY,
    )
    assert initiated.status_code == 200
    urls = initiated.json()
    assert set(urls) == {"upload_url", "file_url"}
    put = client.put(urls["upload_url"], content=data, headers={"Content-Type": content_type})
    assert put.status_code == 200
    file_url: str = urls["file_url"]
    return file_url


def test_initiate_then_put_serves_the_file_back(client: TestClient) -> None:
    file_url = initiate_and_put(client, b"hello", "../notes v1.txt", "text/plain")
    assert file_url.startswith("http://testserver/files/uploads/") and file_url.endswith("/notes_v1.txt")
    served = client.get(file_url)
    assert (served.status_code, served.content) == (200, b"hello")
    assert served.headers["content-type"].startswith("text/plain")


def test_cdn_token_then_files_upload_serves_the_file_back(client: TestClient) -> None:
    token = client.post("/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={}, headers=KEY).json()
    assert token["token_type"] == "Bearer" and token["base_url"] == "http://testserver"
    assert token["expires_at"].endswith("Z")
    headers = {"Authorization": f"Bearer {token['token']}", "Content-Type": "image/png", "X-Fal-File-Name": "cat.png"}
    uploaded = client.post("/files/upload", content=png(4, 4), headers=headers)
    assert uploaded.status_code == 200
    assert client.get(uploaded.json()["access_url"]).content == png(4, 4)


def test_storage_needs_a_key_and_a_known_upload(client: TestClient) -> None:
    assert client.post("/storage/upload/initiate", json={}).status_code == 401
    assert client.post("/storage/auth/token", json={}).status_code == 401
    assert client.post("/files/upload", content=b"x", headers={"Authorization": "Bearer made-up"}).status_code == 200
    assert client.post("/files/upload", content=b"x").status_code == 401
    assert client.put("/storage/upload/nope/x.png", content=b"x").status_code == 404
    assert client.get("/files/uploads/nope/x.png").status_code == 404


def test_an_uploaded_image_is_an_input_and_auto_follows_its_shape(make_client: ClientFactory) -> None:
    client = make_client(policy="instant", render="off")  # the fixture clip's name shows the shape (test_render_*)
    image_url = initiate_and_put(client, png(90, 160), "portrait.png", "image/png")
    body = {"prompt": "p", "image_url": image_url, "aspect_ratio": "auto"}
    submitted = client.post("/fal-ai/veo3.1/fast/image-to-video", json=body, headers=KEY).json()
    result = client.get(submitted["response_url"], headers=KEY).json()
    assert result["video"]["file_name"] == "720x1280_8s_audio.mp4"


def test_an_uploaded_file_that_is_not_an_image_is_image_load_error(make_client: ClientFactory) -> None:
    client = make_client(policy="instant")
    image_url = initiate_and_put(client, b"not an image", "x.png", "image/png")
    response = client.post("/fal-ai/veo3/image-to-video", json={"prompt": "p", "image_url": image_url}, headers=KEY)
    result = client.get(response.json()["response_url"], headers=KEY)  # the runner reads the image
    assert result.status_code == 422
    assert result.json()["detail"][0]["type"] == "image_load_error"


def test_uploads_outlive_the_process_and_reset_deletes_them(make_client: ClientFactory, tmp_path: Path) -> None:
    first = make_client(state_dir=tmp_path / "shared")
    file_url = initiate_and_put(first, b"kept", "kept.txt", "text/plain")
    second = make_client(state_dir=tmp_path / "shared")  # a new process on the same state dir
    assert second.get(file_url).content == b"kept"
    second.post("/_emulator/reset")
    assert second.get(file_url).status_code == 404
