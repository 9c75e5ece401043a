"""The real server process: its ready line, server.json, and the `env` exports that follow it."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from fal_emulator.exports import env_lines, running_server
from fal_emulator.server import read_listening, server_file
from fal_emulator.testing import EmulatorProcess


def test_env_exports_the_key_the_server_accepts_and_server_json_goes_when_it_stops(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path, extra_args=("--key", "only-this")) as server:
        listening = read_listening(tmp_path)
        assert listening is not None and listening == server.listening
        assert "export FAL_KEY=only-this" in env_lines(running_server(tmp_path))
        assert server_file(tmp_path).stat().st_mode & 0o077 == 0
        context = ssl.create_default_context(cafile=listening.bundle)
        with httpx.Client(base_url=listening.https_url, verify=context) as client:
            body = {"prompt": "p"}
            assert client.post("/fal-ai/veo3", json=body, headers={"Authorization": "Key only-this"}).status_code == 200
            assert client.post("/fal-ai/veo3", json=body, headers={"Authorization": "Key other"}).status_code == 401
    assert not server_file(tmp_path).exists()


def test_the_same_ports_serve_plain_http_too(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path, policy="instant") as server:
        assert server.listening is not None
        response = httpx.get(f"{server.listening.http_url}/_emulator/health")
        assert response.json()["status"] == "ok"
        assert response.headers["x-fal-request-id"]


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fal_emulator.cli", "serve", "--log-level", "warning", *args]


def test_a_port_in_use_names_itself_and_leaves_the_running_servers_files_alone(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path / "first") as server:
        assert server.listening is not None
        first = tmp_path / "first"
        files = {path: path.read_bytes() for path in [*(first / "tls").iterdir(), server_file(first)]}
        port = server.listening.https_port
        state_dir = tmp_path / "second"
        args = ("--state-dir", str(state_dir), "--http-port", "0", "--https-port", str(port), "--proxy-port", "0")
        done = subprocess.run(serve_command(*args), capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            f"fal-emulator: cannot listen on 127.0.0.1:{port} for HTTPS: Address already in use (is another "
            "fal-emulator running? `fal-emulator env` names the one using this state dir); choose another port "
            "with --https-port PORT (0 = any free port)"
        ]
        assert {path: path.read_bytes() for path in files} == files
        assert not state_dir.exists()


def test_a_second_server_on_the_same_state_dir_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """Before: the second took `server.json` and the certificates over, and once it stopped `env` said no server
    ran while the first still answered."""
    with EmulatorProcess(tmp_path) as server:
        assert server.listening is not None
        files = {path: path.read_bytes() for path in [*(tmp_path / "tls").iterdir(), server_file(tmp_path)]}
        ports = ("--http-port", "0", "--https-port", "0", "--proxy-port", "0")
        done = subprocess.run(serve_command("--state-dir", str(tmp_path), *ports), capture_output=True, text=True)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            f"fal-emulator: the state dir {tmp_path} is in use by a running fal-emulator (pid {server.listening.pid}, "
            f"{server.listening.http_url}); stop it, or choose another with --state-dir DIR or FAL_EMULATOR_STATE_DIR"
        ]
        assert {path: path.read_bytes() for path in files} == files
        assert running_server(tmp_path) == server.listening  # `env` still names the first


def test_an_unwritable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    state_dir = tmp_path / "a-file"
    state_dir.write_text("")
    ports = ("--http-port", "0", "--https-port", "0", "--proxy-port", "0")
    done = subprocess.run(serve_command("--state-dir", str(state_dir), *ports), capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith(f"fal-emulator: cannot write the state dir {state_dir}: ")
    assert "--state-dir DIR" in done.stderr and "Traceback" not in done.stderr


def test_stopping_with_an_open_status_stream_ends_it_cleanly(tmp_path: Path) -> None:
    server = EmulatorProcess(tmp_path, policy="manual", extra_args=("--log-level", "info"))
    listening = server.start()
    try:
        with httpx.Client(base_url=listening.http_url, headers={"Authorization": "Key k"}) as client:
            request_id = client.post("/fal-ai/veo3", json={"prompt": "p"}).json()["request_id"]
            with client.stream("GET", f"/fal-ai/veo3/requests/{request_id}/status/stream") as stream:
                lines = stream.iter_lines()
                assert next(lines).startswith("data: ")  # the stream is open, the request still queued
                server.stop()  # SIGTERM, as Ctrl-C does
                assert [line for line in lines if line] == []  # then it ends, without a transport error
    finally:
        server.stop()
    output = "".join(server.output)
    assert "Traceback" not in output and "ERROR" not in output
    for line in ("Started server process", "Shutting down", "Finished server process"):
        assert output.count(line) == 1, output


def test_env_after_a_crash_says_the_server_has_stopped(tmp_path: Path) -> None:
    server = EmulatorProcess(tmp_path)
    server.start()
    server.kill()  # server.json stays behind
    server.stop()
    done = subprocess.run(
        [sys.executable, "-m", "fal_emulator.cli", "env", "--state-dir", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "does not answer" in done.stderr and "it has stopped" in done.stderr


def test_the_banners_eval_line_works_from_any_directory(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path) as server:
        assert server.listening is not None
        banner = "".join(server.output)
        [line] = [line.strip() for line in banner.splitlines() if "--proxy)" in line]
        command = line.split("   #")[0]
        assert command.startswith('eval "$(/')  # an absolute path
        script = f'{command} && printf "%s\\n" "$HTTPS_PROXY" "$SSL_CERT_FILE" "${{FAL_QUEUE_RUN_HOST-unset}}"'
        done = subprocess.run(["bash", "-c", script], cwd="/", capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [server.listening.proxy_url, server.listening.bundle, "unset"]
