"""Slow, idle, oversized and vanishing clients against a real `fal-emulator serve` (issue 14: defects E and F)."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from fal_emulator.testing import EmulatorProcess

READ_TIMEOUT = 1.0  # seconds (--read-timeout): a head must be complete within it, a body may stall that long
CAP = 1024 * 1024  # bytes (--max-body-bytes)
ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = json.dumps({"prompt": "p", "image_url": "https://example.com/a.png"}).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    args = ("--read-timeout", str(READ_TIMEOUT), "--max-body-bytes", str(CAP), "--max-connections", "8",
            "--log-level", "info")  # fmt: skip
    with EmulatorProcess(tmp_path_factory.mktemp("connections"), policy="instant", extra_args=args) as process:
        yield process


def connect(server: EmulatorProcess) -> socket.socket:
    assert server.listening is not None
    sock = socket.create_connection(("127.0.0.1", server.listening.http_port), timeout=10)
    return sock


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float:
    """Seconds until the server closes `sock`, sending a byte of `trickle` every 0.2 s meanwhile (the attack).
    Fails if the connection is still open after `seconds`."""
    start = time.monotonic()
    with sock:
        for byte in [trickle[i : i + 1] for i in range(len(trickle))] or [b""] * 1000:
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                try:
                    if not sock.recv(65536):
                        return time.monotonic() - start
                except ConnectionResetError:
                    return time.monotonic() - start
                continue
            assert time.monotonic() - start < seconds, "the connection is still open"
            if byte:
                try:
                    sock.sendall(byte)
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - start
    raise AssertionError("the connection is still open")


def head(content_length: int) -> bytes:
    """A submit's request head declaring `content_length` bytes of JSON body."""
    return (f"POST /{ENDPOINT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Key k\r\n"
            f"Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n").encode()  # fmt: skip


def read_answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_f_a_request_head_trickled_in_is_cut_off(server: EmulatorProcess) -> None:
    sock = connect(server)
    head = b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200
    assert closed_within(sock, READ_TIMEOUT + 4, trickle=head) >= READ_TIMEOUT * 0.9


def test_f_an_idle_connection_is_closed(server: EmulatorProcess) -> None:
    assert closed_within(connect(server), READ_TIMEOUT + 4) >= READ_TIMEOUT * 0.9


def test_f_the_next_head_on_a_kept_alive_connection_has_a_deadline_too(server: EmulatorProcess) -> None:
    sock = connect(server)
    sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert read_answer(sock).startswith(b"HTTP/1.1 200")
    head = b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    closed_within(sock, READ_TIMEOUT + 4, trickle=head)


def test_f_a_stalled_body_gets_408(server: EmulatorProcess) -> None:
    with connect(server) as sock:
        sock.sendall(head(len(BODY)) + BODY[:10])
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b"connection: close" in answer.lower()


def wait_for_output(server: EmulatorProcess, text: str, seconds: float = 10) -> str:
    """The server's output once it holds `text` (its reader thread appends lines as they come)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        output = "".join(server.output)
        if text in output:
            return output
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the server's output:\n{''.join(server.output)}")


def test_f_a_client_that_vanishes_mid_body_is_one_info_line(server: EmulatorProcess) -> None:
    with connect(server) as sock:
        sock.sendall(head(len(BODY)) + BODY[:10])
    output = wait_for_output(server, "client disconnected before its request body was complete")
    assert "INFO" in output.split("client disconnected")[0].splitlines()[-1]
    assert "Traceback" not in output and "Exception in ASGI application" not in output


def test_e_a_declared_500_mb_body_is_413_at_once(server: EmulatorProcess) -> None:
    with connect(server) as sock:
        sock.sendall(head(500 * 1024 * 1024))
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 413")


def test_e_a_streamed_body_stops_being_read_at_the_cap(server: EmulatorProcess) -> None:
    total, sent = 256 * 1024 * 1024, 0
    with connect(server) as sock:
        sock.sendall(f"POST /{ENDPOINT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Key k\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())  # fmt: skip
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += 64 * 1024
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = read_answer(sock)
        except ConnectionResetError:
            answer = b""
    assert sent < total // 4, "the server read far past its cap"
    if answer:  # the 413 may be lost to the reset when the client is still sending
        assert answer.startswith(b"HTTP/1.1 413")
    assert server.listening is not None
    assert httpx.get(f"{server.listening.http_url}/_emulator/health", timeout=10).status_code == 200


def test_f_connections_beyond_the_limit_get_503(server: EmulatorProcess) -> None:
    assert server.listening is not None
    idle = [connect(server) for _ in range(8)]
    try:
        with httpx.Client(base_url=server.listening.http_url, timeout=10) as http:
            assert http.get("/_emulator/health").status_code == 503
    finally:
        for sock in idle:
            sock.close()
    with httpx.Client(base_url=server.listening.http_url, timeout=10) as http:
        assert http.get("/_emulator/health").status_code == 200


def test_the_log_has_no_traceback(server: EmulatorProcess) -> None:
    assert "Traceback" not in "".join(server.output)
