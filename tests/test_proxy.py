"""The HTTPS proxy mode: fal's own hostnames tunnelled to the emulator, everything else refused.

One real server (free ports); clients are httpx with the proxy given explicitly and the emulator's CA
bundle, so nothing here depends on the environment. The unmodified fal_client in proxy mode is tested in
tests/test_client_matrix.py.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fal_emulator.fal_hosts import FAL_HOSTS, role_of
from fal_emulator.testing import EmulatorProcess

KEY = {"Authorization": "Key test-key"}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f80f0000010100005ae9b0f00000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("proxy-state"), policy="instant") as process:
        yield process


@pytest.fixture(scope="module")
def fal(server: EmulatorProcess) -> Iterator[httpx.Client]:
    """A client that reaches fal's hostnames through the emulator's proxy, trusting the emulator's CA."""
    assert server.listening is not None and server.listening.proxy_url
    context = ssl.create_default_context(cafile=server.listening.bundle)
    with httpx.Client(proxy=server.listening.proxy_url, verify=context, headers=KEY, trust_env=False) as client:
        yield client


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback socket that stands for a host the proxy must never connect to."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    with sock:
        yield sock


def assert_never_connected(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):  # nothing waits in its accept queue
        sock.accept()


def raw_proxy_exchange(server: EmulatorProcess, request: bytes) -> bytes:
    """Send `request` to the proxy port as it is, and read the answer until the proxy closes."""
    assert server.listening is not None and server.listening.proxy_port
    with socket.create_connection(("127.0.0.1", server.listening.proxy_port), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_role_of_names_fal_hosts_and_only_on_port_443() -> None:
    assert role_of("queue.fal.run") == role_of("QUEUE.FALRUN.COM:443") == "queue"
    assert role_of("fal.run.") == "run"
    assert role_of("rest.alpha.fal.ai") == "rest" and role_of("v3b.fal.media") == "media"
    assert role_of("queue.fal.run:80") is None and role_of("example.org") is None and role_of(None) is None


def test_a_submit_through_the_proxy_answers_on_fals_hostnames(fal: httpx.Client) -> None:
    submitted = fal.post("https://queue.fal.run/fal-ai/veo3", json={"prompt": "a lego chef"}).json()
    request_id = submitted["request_id"]
    assert submitted["status_url"] == f"https://queue.fal.run/fal-ai/veo3/requests/{request_id}/status"
    statuses = [fal.get(submitted["status_url"]).json()["status"]]
    assert statuses == ["COMPLETED"]
    video = fal.get(submitted["response_url"]).json()["video"]
    assert video["url"] == "https://v3.fal.media/files/1280x720_8s_audio.mp4"
    mp4 = fal.get(video["url"])
    assert mp4.status_code == 200 and len(mp4.content) == video["file_size"] and mp4.content[4:8] == b"ftyp"


def test_the_backup_hosts_and_the_run_host(fal: httpx.Client) -> None:
    via_backup = fal.post("https://queue.falrun.com/fal-ai/veo3", json={"prompt": "p"})
    assert via_backup.status_code == 200 and via_backup.json()["status"] == "IN_QUEUE"
    for host in ("fal.run", "falrun.com"):
        output = fal.post(f"https://{host}/fal-ai/veo3", json={"prompt": "p"}).json()
        assert output["video"]["url"].startswith("https://v3.fal.media/files/")


@pytest.mark.parametrize("rest", ["rest.fal.ai", "rest.alpha.fal.ai"])
def test_uploads_through_the_rest_and_media_hosts(fal: httpx.Client, rest: str) -> None:
    initiated = fal.post(
        f"https://{rest}/storage/upload/initiate", json={"file_name": "a.png", "content_type": "image/png"}
    )
    upload_url, file_url = initiated.json()["upload_url"], initiated.json()["file_url"]
    assert upload_url.startswith(f"https://{rest}/") and file_url.startswith("https://v3.fal.media/files/")
    assert fal.put(upload_url, content=PNG, headers={"content-type": "image/png"}).status_code == 200
    assert fal.get(file_url).content == PNG
    token = fal.post(f"https://{rest}/storage/auth/token?storage_type=fal-cdn-v3", json={}).json()
    assert token["base_url"] == "https://v3.fal.media"
    cdn = fal.post(
        "https://v3.fal.media/files/upload",
        content=PNG,
        headers={"Authorization": f"Bearer {token['token']}", "content-type": "image/png", "x-fal-file-name": "b.png"},
    )
    assert cdn.json()["access_url"].startswith("https://v3.fal.media/files/uploads/")
    # an uploaded file is an input the emulator reads (its size decides an `auto` aspect ratio)
    submitted = fal.post(
        "https://queue.fal.run/fal-ai/veo3/image-to-video", json={"prompt": "p", "image_url": cdn.json()["access_url"]}
    )
    assert submitted.status_code == 200


@pytest.mark.parametrize(
    ("url", "method"),
    [
        ("https://rest.fal.ai/fal-ai/veo3", "POST"),  # the queue is not on the storage host
        ("https://v3.fal.media/fal-ai/veo3", "POST"),
        ("https://queue.fal.run/files/1280x720_8s_audio.mp4", "GET"),  # nor the files on the queue host
        ("https://v3.fal.media/storage/auth/token", "POST"),
    ],
)
def test_each_fal_host_serves_only_its_own_paths(fal: httpx.Client, url: str, method: str) -> None:
    answer = fal.request(method, url, json={"prompt": "p"})
    assert answer.status_code == 404
    assert answer.json() == {"detail": f"Path {httpx.URL(url).path} not found"}
    assert answer.headers["x-fal-request-id"]


def test_https_example_org_gets_403_and_says_why(fal: httpx.Client) -> None:
    with pytest.raises(httpx.ProxyError, match="403"):
        fal.get("https://example.org/")


def test_connect_elsewhere_is_refused_without_connecting(server: EmulatorProcess, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    for target in (f"127.0.0.1:{port}", f"localhost:{port}", "example.org:443", "queue.fal.run:80", "api.fal.ai:443"):
        answer = raw_proxy_exchange(server, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 403 Forbidden"), answer
        text = body.decode()
        assert f"refused CONNECT {target}" in text and "queue.fal.run" in text and "never an open proxy" in text
    assert_never_connected(listener)


def test_plain_http_proxying_is_refused_without_connecting(server: EmulatorProcess, listener: socket.socket) -> None:
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    answer = raw_proxy_exchange(server, f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403 Forbidden") and b"not a CONNECT request" in answer
    with httpx.Client(proxy=server.listening.proxy_url if server.listening else None, trust_env=False) as client:
        assert client.get(url).status_code == 403
    assert_never_connected(listener)


def test_a_malformed_request_is_a_400(server: EmulatorProcess) -> None:
    answer = raw_proxy_exchange(server, b"NOT HTTP AT ALL\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")


def test_the_certificate_names_every_fal_host(server: EmulatorProcess) -> None:
    from cryptography import x509

    assert server.listening is not None
    pem = Path(server.listening.ca_cert).with_name("server.pem").read_bytes()
    certificates = x509.load_pem_x509_certificates(pem)
    leaf = next(
        cert for cert in certificates if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    )
    names = set(
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    )
    assert set(FAL_HOSTS) <= names


def test_env_proxy_exports_and_the_emulators_own_address_stays_direct(server: EmulatorProcess) -> None:
    env = server.proxy_env()
    assert server.listening is not None
    assert env["HTTPS_PROXY"] == env["https_proxy"] == server.listening.proxy_url
    assert set(env) >= {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "FAL_KEY", "NO_PROXY"}
    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in env.items():
            patch.setenv(name, value)
        # httpx reads HTTPS_PROXY and NO_PROXY from the environment: loopback is not proxied
        health = httpx.get(f"{server.listening.http_url}/_emulator/health")
        assert health.json()["status"] == "ok"
        answer = httpx.post("https://queue.fal.run/fal-ai/veo3", json={"prompt": "p"}, headers=KEY)
        assert answer.json()["status_url"].startswith("https://queue.fal.run/")
