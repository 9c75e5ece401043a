"""The container image (Dockerfile), built and run with podman: the seed request against it, on the published
ports and through its HTTPS proxy; non-root, healthy, the control-plane token printed.

Skips, saying why, where it cannot run: no podman, podman unable to run containers here (no user
namespaces, a nested container), the Dockerfile's base image not in podman's local store (this test never
pulls: it reaches no registry but the package indexes the build itself needs), or no package index for
the build. Readiness is the server's own ready line in the container's log, never a sleep.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fal_emulator.server import READY_PREFIX
from tests.conftest import SEED_REQUESTS

ROOT = Path(__file__).resolve().parent.parent
PODMAN = shutil.which("podman")
BASE = re.search(r"^ARG BASE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
BUILD_TIMEOUT = 600  # seconds
OFFLINE = ("Temporary failure in name resolution", "Failed to establish a new connection", "No matching distribution")
I2V = "fal-ai/veo3/image-to-video"
KEY = {"Authorization": "Key container-key"}


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert PODMAN is not None
    return subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False)


def why_not() -> str | None:
    """Why podman cannot build and run the image here, or None."""
    if PODMAN is None:
        return "needs podman (scripts/system-packages installs Debian's package when run as root)"
    probe = podman("info", "--format", "json")
    if probe.returncode:
        return f"podman cannot run here: {probe.stderr.strip().splitlines()[-1:]}"
    assert BASE is not None, "the Dockerfile has no `ARG BASE=...`"
    if podman("image", "exists", BASE.group(1)).returncode:
        return (
            f"the Dockerfile's base image {BASE.group(1)} is not in podman's local store, and this test pulls nothing "
            "(this machine reaches no container registry); `podman pull` it where one is reachable"
        )
    trial = podman("run", "--rm", "--network", "none", BASE.group(1), "true")
    if trial.returncode:  # e.g. crun refusing hybrid cgroups or setrlimit in a nested or restricted machine
        return f"podman cannot run containers here: {trial.stderr.strip().splitlines()[-1:]}"
    return None


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    reason = why_not()
    if reason:
        pytest.skip(reason)
    tag = f"localhost/fal-emulator-test:{uuid.uuid4().hex[:8]}"
    built = podman("build", "--format", "docker", "--tag", tag, str(ROOT), timeout=BUILD_TIMEOUT)
    if built.returncode and any(sign in built.stdout + built.stderr for sign in OFFLINE):
        pytest.skip(f"the image build needs PyPI, which it cannot reach here: {built.stderr.strip()[-300:]}")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    try:
        yield tag
    finally:
        podman("rmi", "--force", tag)


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[dict[str, str]]:
    """A running container on free loopback ports; its name and the host URLs of the three listeners."""
    name, volume = f"fal-emulator-test-{uuid.uuid4().hex[:8]}", f"fal-emulator-test-state-{uuid.uuid4().hex[:8]}"
    ports = [arg for port in (8470, 8471, 8472) for arg in ("-p", f"127.0.0.1::{port}")]
    started = podman("run", "--detach", "--name", name, "-v", f"{volume}:/state", *ports, image)
    assert started.returncode == 0, started.stderr
    try:
        assert PODMAN is not None
        logs = subprocess.Popen(
            [PODMAN, "logs", "--follow", name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert logs.stdout is not None
        output = []
        for line in logs.stdout:  # until the ready line (or the container exits and the log ends)
            output.append(line)
            if line.startswith(READY_PREFIX):
                break
        logs.kill()
        logs.wait()
        logs.stdout.close()
        assert output and output[-1].startswith(READY_PREFIX), "".join(output)
        published = {
            port: podman("port", name, f"{port}/tcp").stdout.strip().rsplit(":", 1)[1] for port in (8470, 8471, 8472)
        }
        yield {
            "name": name,
            "log": "".join(output),
            "http": f"http://127.0.0.1:{published[8470]}",
            "https": f"https://127.0.0.1:{published[8471]}",
            "proxy": f"http://127.0.0.1:{published[8472]}",
        }
    finally:
        podman("rm", "--force", name)
        podman("volume", "rm", "--force", volume)


def test_the_seed_request_on_the_published_http_port(container: dict[str, str]) -> None:
    with httpx.Client(base_url=container["http"], headers=KEY, trust_env=False, timeout=60) as client:
        submitted = client.post(f"/{I2V}", json=SEED_REQUESTS[I2V]).json()
        # The image's `default` timing takes about 2 s: wait on the status stream (on the address the client
        # reached), which closes after COMPLETED, never on a count of polls.
        with client.stream("GET", submitted["status_url"] + "/stream") as stream:
            events = [json.loads(line[len("data: ") :]) for line in stream.iter_lines() if line.startswith("data: ")]
        assert events[-1]["status"] == "COMPLETED" and "error" not in events[-1], events[-1]
        video = client.get(f"/fal-ai/veo3/requests/{submitted['request_id']}").json()["video"]
        assert video["file_name"] == "1280x720_8s_audio.mp4"
        assert client.get(f"/files/{video['file_name']}").content[4:8] == b"ftyp"


def test_fal_hostnames_through_the_containers_proxy(container: dict[str, str], tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    assert podman("cp", f"{container['name']}:/state/tls/bundle.pem", str(bundle)).returncode == 0
    context = ssl.create_default_context(cafile=str(bundle))
    with httpx.Client(proxy=container["proxy"], verify=context, headers=KEY, trust_env=False) as fal:
        submitted = fal.post(f"https://queue.fal.run/{I2V}", json=SEED_REQUESTS[I2V]).json()
        assert submitted["status_url"].startswith("https://queue.fal.run/fal-ai/veo3/requests/")
        with pytest.raises(httpx.ProxyError, match="403"):
            fal.get("https://example.org/")


def test_non_root_healthy_and_the_control_token_is_printed(container: dict[str, str]) -> None:
    assert podman("exec", container["name"], "id", "-u").stdout.strip() == "10001"
    assert podman("healthcheck", "run", container["name"]).returncode == 0
    token = re.search(r"control plane token: (\S+)", container["log"])
    assert token, container["log"]
    with httpx.Client(base_url=container["http"], trust_env=False) as client:
        assert client.get("/_emulator/requests").status_code == 401
        answer = client.get("/_emulator/requests", headers={"X-Fal-Emulator-Token": token.group(1)})
        assert answer.status_code == 200, answer.text
    inspect = json.loads(
        podman("image", "inspect", podman("inspect", "--format", "{{.Image}}", container["name"]).stdout.strip()).stdout
    )
    assert set(inspect[0]["Config"]["ExposedPorts"]) == {"8470/tcp", "8471/tcp", "8472/tcp"}
    assert "/state" in inspect[0]["Config"]["Volumes"]
