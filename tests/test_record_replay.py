"""`fal-emulator record` then `fal-emulator serve --replay`, through the unmodified clients.

The upstream is a stand-in for real fal on loopback: another `fal-emulator serve` with its own seed and timings,
accepting only one key (so the recorder must send the user's key). fal_client 1.0.3 and @fal-ai/client 1.10.1
subscribe through the recorder, then the same calls go to an emulator replaying the cassette: the outputs, the
status sequences and the logs must be the ones upstream gave, and the key must appear nowhere on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from starlette.testclient import TestClient

from fal_emulator import cli as emulator_cli
from fal_emulator.cassette import load_cassette, media_dir
from fal_emulator.contracts import cli as contracts_cli
from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from fal_emulator.testing import EmulatorProcess
from tests.test_js_client import JS_DIR, NODE, NPM, node_modules  # noqa: F401 - the npm ci fixture

KEY = "stand-in-key-4f9c2e:0123456789abcdef0123456789abcdef"
ENDPOINT = "fal-ai/veo3.1/fast"
PY_INPUT = {"prompt": "a lighthouse at dusk", "duration": "4s", "resolution": "720p", "generate_audio": False}
JS_INPUT = {"prompt": "a fox in the snow", "duration": "6s", "resolution": "720p", "generate_audio": True}
PROXY_INPUT = {"prompt": "a tram at night", "duration": "4s", "resolution": "720p", "generate_audio": False}
STREAM_INPUT = {"prompt": "a kite over the sea", "duration": "4s", "resolution": "720p", "generate_audio": False}
UPLOAD = b"\x89PNG\r\n\x1a\n not really a png"
FAILING_INPUT = {"prompt": "a storm [[fal-emulator:content_policy_violation]]", "duration": "4s"}

PY_CLIENT = """
import json, sys
import fal_client

endpoint, arguments, fails = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "fails"
statuses, logs = [], []

def seen(update):
    statuses.append(type(update).__name__)
    if getattr(update, "logs", None):
        logs[:] = update.logs

try:
    data = fal_client.subscribe(endpoint, arguments=arguments, with_logs=True, on_queue_update=seen)
    error = None
except fal_client.FalClientHTTPError as exc:
    data, error = None, {"status": exc.status_code, "body": exc.response.json(),
                         "error_type": exc.response.headers.get("x-fal-error-type"),
                         "retryable": exc.response.headers.get("x-fal-retryable")}
print(json.dumps({"statuses": statuses, "logs": logs, "data": data, "error": error}))
"""


def _distinct(statuses: list[str]) -> list[str]:
    return [status for i, status in enumerate(statuses) if i == 0 or statuses[i - 1] != status]


def _py_client(
    process: EmulatorProcess, arguments: dict[str, Any], *, fails: bool = False, proxy: bool = False
) -> dict[str, Any]:
    """fal_client 1.0.3 in a process of its own, pointed at `process` by FAL_QUEUE_RUN_HOST (or, with `proxy`,
    through its HTTPS proxy on fal's own hostnames)."""
    redirect = process.proxy_env if proxy else process.client_env
    env = {**os.environ, **redirect(key="whatever-the-app-has")}
    command = [sys.executable, "-c", PY_CLIENT, ENDPOINT, json.dumps(arguments), "fails" if fails else "ok"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _js_client(process: EmulatorProcess) -> dict[str, Any]:
    assert NODE is not None and process.listening is not None
    env = {**os.environ, "EMULATOR_URL": process.listening.http_url, "NO_COLOR": "1"}
    env.pop("FAL_KEY", None)
    command = [NODE, "record_replay.mjs", ENDPOINT, json.dumps(JS_INPUT)]
    done = subprocess.run(command, cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


class WebhookReceiver:
    """The user's webhook endpoint on loopback: keeps each delivery (headers, body) and signals it."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                receiver.arrived.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _uploaded(process: EmulatorProcess) -> bytes:
    """fal's storage upload through `process` (initiate, then PUT to the URL it gives); the bytes served back."""
    assert process.listening is not None
    with httpx.Client(base_url=process.listening.http_url, headers={"Authorization": "Key app"}, timeout=60) as http:
        upload = http.post("/storage/upload/initiate", json={"content_type": "image/png", "file_name": "in.png"})
        target = upload.raise_for_status().json()
        assert target["upload_url"].startswith(process.listening.http_url)  # rewritten to the recorder
        http.put(target["upload_url"], content=UPLOAD, headers={"content-type": "image/png"}).raise_for_status()
        return http.get(target["file_url"]).raise_for_status().content


def _streamed(process: EmulatorProcess, webhook: str | None = None) -> list[str]:
    """Submit over plain HTTP and read the status stream (SSE) to its end: the statuses of its events."""
    assert process.listening is not None
    with httpx.Client(base_url=process.listening.http_url, headers={"Authorization": "Key app"}, timeout=60) as http:
        params = {"fal_webhook": webhook} if webhook else {}
        submitted = http.post(f"/{ENDPOINT}", json=STREAM_INPUT, params=params).json()
        with connect_sse(http, "GET", submitted["status_url"] + "/stream", params={"logs": 1}) as events:
            statuses = [json.loads(event.data)["status"] for event in events.iter_sse()]
        http.get(submitted["response_url"]).raise_for_status()
    return statuses


def _logs(logs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(line["message"], line["level"], line["source"]) for line in logs]


def _video_digest(process: EmulatorProcess, url: str) -> str:
    assert process.listening is not None
    trust = ssl.create_default_context(cafile=process.listening.bundle)
    return hashlib.sha256(httpx.get(url, timeout=30, verify=trust).content).hexdigest()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, node_modules: Path) -> Iterator[dict[str, Any]]:  # noqa: F811
    """Record the three exchanges through the recorder; yields what each client saw and the cassette."""
    root = tmp_path_factory.mktemp("record")
    cassette = root / "veo.har"
    upstream = EmulatorProcess(
        root / "upstream", policy="timed:0.5,1", seed=777, extra_args=("--key", KEY, "--prompt-scenarios")
    )
    recorder = EmulatorProcess(root / "recorder")
    with upstream:
        assert upstream.listening is not None
        recorder.args = [
            sys.executable, "-m", "fal_emulator.cli", "record", "--upstream", upstream.listening.http_url,
            "--cassette", str(cassette), "--allow-spend", "5", "--http-port", "0", "--https-port", "0",
            "--state-dir", str(root / "recorder"), "--log-level", "warning",
        ]  # fmt: skip
        os.environ["FAL_KEY"] = KEY  # the recorder's own environment: the user's key
        try:
            recorder.start()
        finally:
            del os.environ["FAL_KEY"]
        try:
            with WebhookReceiver() as receiver:
                seen: dict[str, Any] = {
                    "py": _py_client(recorder, PY_INPUT),
                    "js": _js_client(recorder),
                    "failing": _py_client(recorder, FAILING_INPUT, fails=True),
                    "proxy": _py_client(recorder, PROXY_INPUT, proxy=True),
                    "stream": _streamed(recorder, webhook=receiver.url),
                    "uploaded": _uploaded(recorder),
                }
                assert receiver.arrived.wait(timeout=30), "upstream's webhook never reached the user's URL"
                seen["webhooks"] = receiver.deliveries
            seen["py_video"] = _video_digest(recorder, seen["py"]["data"]["video"]["url"])
        finally:
            recorder.stop()
    yield {"cassette": cassette, "seen": seen}


@pytest.fixture(scope="module")
def replayed(recorded: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with EmulatorProcess(tmp_path_factory.mktemp("replay"), extra_args=("--replay", str(recorded["cassette"]))) as p:
        seen: dict[str, Any] = {
            "py": _py_client(p, PY_INPUT),
            "js": _js_client(p),
            "failing": _py_client(p, FAILING_INPUT, fails=True),
            "proxy": _py_client(p, PROXY_INPUT, proxy=True),
            "stream": _streamed(p),
        }
        seen["py_video"] = _video_digest(p, seen["py"]["data"]["video"]["url"])
        yield seen


pytestmark = pytest.mark.skipif(NODE is None or NPM is None, reason="the JS client half needs node and npm on PATH")


def test_the_cassette_holds_no_key(recorded: dict[str, Any]) -> None:
    cassette: Path = recorded["cassette"]
    files = [cassette, *media_dir(cassette).iterdir()]
    assert len(files) >= 3  # the cassette and the two videos
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
        assert KEY.split(":")[1].encode() not in path.read_bytes(), path
    log = load_cassette(cassette)["log"]  # and it is a valid HAR 1.2 cassette
    assert log["version"] == "1.2"
    kinds = {entry["_fal"]["kind"] for entry in log["entries"]}
    assert {"submit", "status", "result"} <= kinds
    submits = [entry for entry in log["entries"] if entry["_fal"]["kind"] == "submit"]
    headers = {h["name"].lower(): h["value"] for h in submits[0]["request"]["headers"]}
    assert headers["authorization"] == "[REDACTED]"


@pytest.mark.parametrize("client", ["py", "js", "proxy"])
def test_a_replay_gives_the_outputs_statuses_and_logs_upstream_gave(
    client: str, recorded: dict[str, Any], replayed: dict[str, Any]
) -> None:
    before, after = recorded["seen"][client], replayed[client]
    assert _distinct(after["statuses"]) == _distinct(before["statuses"])
    assert len(_distinct(before["statuses"])) == 3, before["statuses"]  # queued, running, completed
    assert _logs(after["logs"]) == _logs(before["logs"]) != []
    video_before, video_after = before["data"]["video"], after["data"]["video"]
    assert {k: v for k, v in video_after.items() if k != "url"} == {k: v for k, v in video_before.items() if k != "url"}
    assert video_after["url"].split("/files/recorded/")[1] == video_before["url"].split("/files/recorded/")[1]
    if client == "proxy":  # fal's own hostnames: outputs on fal's media host, as fal gives them
        assert video_before["url"].startswith("https://v3.fal.media/files/recorded/")
        assert video_after["url"].startswith("https://v3.fal.media/files/recorded/")


def test_a_replayed_video_is_the_recorded_one(recorded: dict[str, Any], replayed: dict[str, Any]) -> None:
    assert replayed["py_video"] == recorded["seen"]["py_video"]


def test_a_replayed_failure_has_the_recorded_error_body_and_headers(
    recorded: dict[str, Any], replayed: dict[str, Any]
) -> None:
    before, after = recorded["seen"]["failing"]["error"], replayed["failing"]["error"]
    assert before["status"] == 422 and before["error_type"] == "content_policy_violation"
    assert after == before


def test_a_status_stream_is_recorded_event_by_event_and_replayed(
    recorded: dict[str, Any], replayed: dict[str, Any]
) -> None:
    assert _distinct(recorded["seen"]["stream"]) == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert _distinct(replayed["stream"]) == _distinct(recorded["seen"]["stream"])
    log = load_cassette(recorded["cassette"])["log"]
    (stream,) = [entry for entry in log["entries"] if entry["_fal"]["kind"] == "stream"]
    offsets = [event["offset"] for event in stream["_fal"]["events"]]
    assert offsets == sorted(offsets) and offsets[-1] >= 1.4  # queued 0.5 s, then 1 s running (upstream's timing)
    assert stream["response"]["content"]["mimeType"].startswith("text/event-stream")


def test_webhooks_are_recorded_and_reach_the_users_url_unchanged(recorded: dict[str, Any]) -> None:
    ((headers, body),) = recorded["seen"]["webhooks"]
    assert json.loads(body)["status"] == "OK"
    assert headers["x-fal-webhook-signature"]  # forwarded as signed by upstream
    log = load_cassette(recorded["cassette"])["log"]
    (hook,) = [entry for entry in log["entries"] if entry["_fal"]["kind"] == "webhook"]
    assert json.loads(hook["request"]["postData"]["text"]) == json.loads(body)
    assert hook["_fal"]["offset"] > 0 and hook["response"]["status"] == 200


def test_uploads_are_recorded_with_their_bytes_beside_the_cassette(recorded: dict[str, Any]) -> None:
    assert recorded["seen"]["uploaded"] == UPLOAD
    log = load_cassette(recorded["cassette"])["log"]
    uploads = [entry for entry in log["entries"] if entry["_fal"]["kind"] == "upload"]
    assert [entry["request"]["method"] for entry in uploads] == ["POST", "PUT"]
    digest = uploads[1]["_fal"]["body_sha256"]
    assert (media_dir(recorded["cassette"]) / f"{digest}.png").read_bytes() == UPLOAD


def test_recording_needs_a_budget_and_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    command = ["record", "--cassette", str(tmp_path / "c.har"), "--state-dir", str(tmp_path)]
    assert emulator_cli.main(command) == 2
    assert "--allow-spend USD" in capsys.readouterr().err
    assert emulator_cli.main([*command, "--allow-spend", "1"]) == 2
    assert "set FAL_KEY" in capsys.readouterr().err
    assert not (tmp_path / "c.har").exists()


# -- the contract kit on the recording --------------------------------------------------------------------------


def _copy(cassette: Path, into: Path) -> Path:
    target = into / cassette.name
    shutil.copy(cassette, target)
    shutil.copytree(media_dir(cassette), media_dir(target))
    return target


def _entries(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [entry for entry in document["log"]["entries"] if entry["_fal"]["kind"] == kind]


def _body(entry: dict[str, Any]) -> Any:
    return json.loads(entry["response"]["content"]["text"])


def _set_body(entry: dict[str, Any], body: Any) -> None:
    entry["response"]["content"]["text"] = json.dumps(body)


def _with_status(document: dict[str, Any], status: str) -> dict[str, Any]:
    return next(entry for entry in _entries(document, "status") if _body(entry)["status"] == status)


def _no_request_id(document: dict[str, Any]) -> None:
    entry = _entries(document, "status")[0]
    entry["response"]["headers"] = [h for h in entry["response"]["headers"] if h["name"].lower() != "x-fal-request-id"]


def _running_answers_200(document: dict[str, Any]) -> None:
    _with_status(document, "IN_PROGRESS")["response"]["status"] = 200


def _queued_without_position(document: dict[str, Any]) -> None:
    entry = _with_status(document, "IN_QUEUE")
    _set_body(entry, {k: v for k, v in _body(entry).items() if k != "queue_position"})


def _back_to_the_queue(document: dict[str, Any]) -> None:
    running = _with_status(document, "IN_PROGRESS")
    later = [
        entry for entry in _entries(document, "status") if entry["_fal"]["request_id"] == running["_fal"]["request_id"]
    ]
    entry = later[-1]
    entry["response"]["status"] = 202
    _set_body(entry, {"status": "IN_QUEUE", "request_id": _body(entry)["request_id"], "queue_position": 0})


def _wrong_file_size(document: dict[str, Any]) -> None:
    entry = next(entry for entry in _entries(document, "result") if entry["response"]["status"] == 200)
    body = _body(entry)
    body["video"]["file_size"] += 1
    _set_body(entry, body)


def _stream_without_completed(document: dict[str, Any]) -> None:
    (entry,) = _entries(document, "stream")
    entry["_fal"]["events"] = entry["_fal"]["events"][:-1]


def _another_video(document: dict[str, Any]) -> None:
    """The 4 s silent request's result points at the 6 s video with audio (size and all)."""
    entry = next(entry for entry in _entries(document, "result") if entry["response"]["status"] == 200)
    body = _body(entry)
    other = next(item for item in document["log"]["_fal"]["media"] if item["url"] != body["video"]["url"])
    body["video"].update(url=other["url"], file_size=other["size"])
    _set_body(entry, body)


BROKEN_RECORDINGS = {
    "media_audio": _another_video,
    "x_fal_request_id": _no_request_id,
    "status_code_by_state": _running_answers_200,
    "queue_position_only_in_queue": _queued_without_position,
    "status_never_backwards": _back_to_the_queue,
    "file_size_matches": _wrong_file_size,
    "sse_ends_at_completed": _stream_without_completed,
}


def test_the_kit_passes_the_recording(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    status = contracts_cli.main(["run", "--cassette", str(recorded["cassette"]), "--seed", "1", "--quiet"])
    summary = capsys.readouterr().out
    assert status == 0, summary
    assert "(cassette)" in summary and summary.rstrip().endswith("PASSED")


@pytest.mark.parametrize("rule", sorted(BROKEN_RECORDINGS))
def test_the_kit_names_the_rule_a_recording_edited_to_break_it_breaks(
    rule: str, recorded: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cassette = _copy(recorded["cassette"], tmp_path)
    document = load_cassette(cassette)
    BROKEN_RECORDINGS[rule](document)
    cassette.write_text(json.dumps(document))
    status = contracts_cli.main(["run", "--cassette", str(cassette), "--seed", "1", "--quiet"])
    summary = capsys.readouterr().out
    assert status == 1, summary
    assert f"[{rule}]" in summary, summary


# -- how submits find their recording (in-process, on a frozen clock) --------------------------------------------


def _replaying(cassette: Path, state: Path, **settings: Any) -> TestClient:
    app = create_app(Settings(replay=cassette, state_dir=state, **settings))
    app.state.emulator.clock.freeze()
    return TestClient(app, headers={"Authorization": "Key app"})


def _completed(client: TestClient, submitted: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    client.app.state.emulator.clock.advance(60)  # type: ignore[attr-defined]
    status = client.get(submitted["status_url"]).json()
    return status, client.get(submitted["response_url"])


def test_an_exact_match_replays_the_recorded_metrics_and_media(recorded: dict[str, Any], tmp_path: Path) -> None:
    with _replaying(recorded["cassette"], tmp_path) as client:
        status, result = _completed(client, client.post(f"/{ENDPOINT}", json=PY_INPUT).json())
        video = result.json()["video"]
        assert "/files/recorded/" in video["url"]
        served = client.get(video["url"])
        assert served.status_code == 200 and len(served.content) == video["file_size"]
        assert hashlib.sha256(served.content).hexdigest() == recorded["seen"]["py_video"]
    log = load_cassette(recorded["cassette"])["log"]
    completed = [
        json.loads(entry["response"]["content"]["text"])
        for entry in log["entries"]
        if entry["_fal"]["kind"] == "status" and entry["response"]["status"] == 200
    ]
    assert status["metrics"] == completed[0]["metrics"]


def test_a_replayed_request_keeps_no_webhook_secret(recorded: dict[str, Any], tmp_path: Path) -> None:
    """A replayed submit is stored as any other: its `fal_webhook`'s password and secret-named query values are
    redacted in the request's record (issue 14, defect I)."""
    hook = "http://hooks:pw-123@127.0.0.1:9/hook?token=tok-456"
    with _replaying(recorded["cassette"], tmp_path) as client:
        submitted = client.post(f"/{ENDPOINT}", json=PY_INPUT, params={"fal_webhook": hook}).json()
        detail = client.get(f"/_emulator/requests/{submitted['request_id']}").json()
        assert detail["webhook_url"] == "http://hooks:***@127.0.0.1:9/hook?token=***"
        assert "pw-123" not in json.dumps(detail) and "tok-456" not in json.dumps(detail)


def test_an_unmatched_submit_falls_back_to_the_emulator(recorded: dict[str, Any], tmp_path: Path) -> None:
    with _replaying(recorded["cassette"], tmp_path) as client:
        _, result = _completed(client, client.post(f"/{ENDPOINT}", json={**PY_INPUT, "prompt": "other"}).json())
        assert "/files/recorded/" not in result.json()["video"]["url"]  # a committed clip


def test_replay_match_endpoint_replays_any_recording_of_the_endpoint(recorded: dict[str, Any], tmp_path: Path) -> None:
    with _replaying(recorded["cassette"], tmp_path, replay_match="endpoint") as client:
        _, result = _completed(client, client.post(f"/{ENDPOINT}", json={**PY_INPUT, "prompt": "other"}).json())
        assert "/files/recorded/" in result.json()["video"]["url"]


def test_replay_strict_answers_404_naming_the_nearest_recording(recorded: dict[str, Any], tmp_path: Path) -> None:
    with _replaying(recorded["cassette"], tmp_path, replay_strict=True) as client:
        answer = client.post(f"/{ENDPOINT}", json={**PY_INPUT, "prompt": "other"})
        assert answer.status_code == 404
        detail = answer.json()["detail"]
        assert detail.startswith(f"No recorded request matches {ENDPOINT} with input sha256 ")
        assert f"the nearest recorded request is #1 {ENDPOINT}" in detail
        assert "whose input differs in: prompt" in detail
        assert "--replay-match endpoint" in detail
