"""The pytest plugin (`fal_emulator.pytest_plugin`), run the way users run it: inner pytest sessions.

Each inner session is a child `python -m pytest` (pytester's `runpytest_subprocess`) that finds the plugin
through its `pytest11` entry point and imports fal_client at the top of its test module, during
collection, before any fixture runs. The `fal_emulator` fixture starts a real `fal-emulator serve`
subprocess in there. This process never imports fal_client (tests/test_e2e_fal_client.py checks that).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fal_emulator.pytest_plugin import DEFAULT_POLICY, policy_of

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parent / "examples"
README = Path(__file__).resolve().parent.parent / "README.md"
TIMEOUT = 60.0
USERS_ENV = {"FAL_KEY": "users-own-key", "FAL_KEY_ID": "users-key-id", "FAL_KEY_SECRET": "users-key-secret"}

# Records what fal_client and the environment look like once the session (and its fixtures) are over.
REPORTING_CONFTEST = """
import json, os, sys
from pathlib import Path

def pytest_sessionfinish(session):
    client = sys.modules["fal_client.client"]
    auth = sys.modules["fal_client.auth"]
    names = ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "FAL_QUEUE_RUN_HOST", "FAL_RUN_HOST", "SSL_CERT_FILE")
    report = {
        "env": {name: os.environ.get(name) for name in names},
        "constants": [client.QUEUE_URL_FORMAT, client.RUN_URL_FORMAT, client.REALTIME_URL_FORMAT,
                      client.REST_URL, client.CDN_URL, auth.FAL_RUN_HOST, auth.FAL_QUEUE_RUN_HOST],
        "cached": sorted(name for name in vars(sys.modules["fal_client"].sync_client) if name.startswith("_")),
    }
    Path(__file__).with_name("after-session.json").write_text(json.dumps(report))
"""

# A user's test module: fal_client imported at the top, nothing else arranged.
USER_TESTS = """
import asyncio
import http.server
import json
import os
import threading

import fal_client
import httpx
import pytest

I2V = "fal-ai/veo3/image-to-video"
ARGS = {"prompt": "A lego chef cooks eggs", "image_url": "https://example.com/chef.png"}
QUEUE_URL_AT_IMPORT = fal_client.client.QUEUE_URL_FORMAT
FIRST_ID = []


def test_before_the_fixture_nothing_is_changed():
    assert QUEUE_URL_AT_IMPORT == fal_client.client.QUEUE_URL_FORMAT == "https://queue.fal.run/"
    assert os.environ["FAL_KEY"] == "users-own-key"
    # The default client builds (and caches) its httpx client now, without the emulator's CA: the fixture drops it.
    assert fal_client.sync_client._client.headers["Authorization"] == "Key users-own-key"


def test_subscribe(fal_emulator):
    updates = []
    result = fal_client.subscribe(I2V, arguments=ARGS, with_logs=True, on_queue_update=updates.append)
    assert type(updates[-1]).__name__ == "Completed"
    assert result["video"]["url"].startswith(fal_emulator.url + "/files/")
    assert fal_emulator.url.startswith("https://127.0.0.1:")
    assert httpx.get(result["video"]["url"]).status_code == 200  # SSL_CERT_FILE trusts the emulator's CA
    assert os.environ["FAL_KEY"] == fal_emulator.key != "users-own-key"
    assert fal_client.sync_client._client.headers["Authorization"] == f"Key {fal_emulator.key}"
    assert "FAL_KEY_ID" not in os.environ and "FAL_KEY_SECRET" not in os.environ


def test_fail_next(fal_emulator):
    fal_emulator.fail_next("content_policy_violation")
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        fal_client.subscribe(I2V, arguments=ARGS)
    assert caught.value.status_code == 422
    assert caught.value.error_type == "content_policy_violation"
    assert fal_client.subscribe(I2V, arguments=ARGS)["video"]  # only the next one


def test_advance_timed(fal_emulator):
    fal_emulator.freeze()
    fal_emulator.set_policy("timed:30,60")
    handle = fal_client.submit(I2V, arguments=ARGS)
    assert isinstance(handle.status(), fal_client.Queued)
    fal_emulator.advance(30)
    assert isinstance(handle.status(), fal_client.InProgress)
    fal_emulator.advance(59)
    assert isinstance(handle.status(), fal_client.InProgress)
    fal_emulator.advance(1)
    assert isinstance(handle.status(), fal_client.Completed)
    assert handle.get()["video"]


def test_advance_realistic_for_one_endpoint(fal_emulator):
    fal_emulator.freeze()
    fal_emulator.set_policy("realistic", I2V)  # 5 s queued, then 20 s + 10 s per second of video
    handle = fal_client.submit(I2V, arguments={**ARGS, "duration": "8s"})
    other = fal_client.submit("fal-ai/veo3.1/fast/image-to-video", arguments=ARGS)
    assert isinstance(other.status(), fal_client.Completed)  # still instant
    assert isinstance(handle.status(), fal_client.Queued)
    fal_emulator.advance(5)
    assert isinstance(handle.status(), fal_client.InProgress)
    fal_emulator.advance(100)
    assert isinstance(handle.status(), fal_client.Completed)


def test_journal(fal_emulator):
    handle = fal_client.submit(I2V, arguments=ARGS)
    [entry] = fal_emulator.journal(method="POST", path=f"/{I2V}")
    assert entry["status"] == 200 and entry["request_id"] == handle.request_id
    assert entry["headers"]["authorization"] == "Key ***"
    assert fal_emulator.key not in str(fal_emulator.journal())


def test_leaves_state_behind(fal_emulator):
    fal_emulator.set_policy("manual")
    fal_emulator.freeze()
    fal_emulator.set_scale(7)
    fal_emulator.fail_next("content_policy_violation", times=3)
    FIRST_ID.append(fal_client.submit(I2V, arguments=ARGS).request_id)
    assert fal_emulator.requests() and fal_emulator.journal() and fal_emulator.outcomes()


def test_state_is_reset_before_each_test(fal_emulator):
    assert fal_emulator.requests() == [] and fal_emulator.journal() == [] and fal_emulator.outcomes() == {}
    assert fal_emulator.policy() == {"default": "instant", "endpoints": {}}
    clock = fal_emulator.clock()
    assert clock["frozen"] is False and clock["scale"] == 1.0
    handle = fal_client.submit(I2V, arguments=ARGS)
    assert handle.request_id == FIRST_ID[0]  # request ids restart from the seed
    assert isinstance(handle.status(), fal_client.Completed) and handle.get()["video"]


def test_uploads_go_to_the_emulator(fal_emulator):
    url = fal_client.upload(b"hello", "text/plain")
    assert url.startswith(fal_emulator.url)
    assert httpx.get(url).content == b"hello"


def test_webhooks(fal_emulator):
    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        hook = f"http://127.0.0.1:{receiver.server_port}/hook"
        handle = fal_client.submit(I2V, arguments=ARGS, webhook_url=hook)
        [delivery] = fal_emulator.wait_for_webhooks(1)
        assert delivery["request_id"] == handle.request_id and delivery["status"] == 200
        assert json.loads(received[0])["status"] == "OK"
        assert fal_emulator.jwks()["keys"][0]["crv"] == "Ed25519"
        assert fal_emulator.journal(kind="webhook")[0]["url"] == hook
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_the_async_client(fal_emulator):
    result = asyncio.run(fal_client.subscribe_async(I2V, arguments=ARGS))
    assert result["video"]["url"].startswith(fal_emulator.url)
"""


@pytest.fixture
def users_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The inner sessions run with a user's own fal credentials set and nothing pointing at an emulator."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)  # the plugin loads by entry point
    for name in ("FAL_QUEUE_RUN_HOST", "FAL_RUN_HOST", "SSL_CERT_FILE", "FAL_FORCE_AUTH_BY_USER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in USERS_ENV.items():
        monkeypatch.setenv(name, value)
    return USERS_ENV


def test_a_module_importing_fal_client_at_the_top_works_unmodified(
    pytester: pytest.Pytester, users_env: dict[str, str]
) -> None:
    pytester.makeconftest(REPORTING_CONFTEST)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=TIMEOUT)
    result.assert_outcomes(passed=USER_TESTS.count("\ndef test_"))
    after = json.loads((pytester.path / "after-session.json").read_text())
    assert after["env"] == {
        **users_env,
        "FAL_QUEUE_RUN_HOST": None,
        "FAL_RUN_HOST": None,
        "SSL_CERT_FILE": None,
    }, "the session's changes to the environment are undone"
    assert after["constants"] == [
        "https://queue.fal.run/",
        "https://fal.run/",
        "wss://fal.run/",
        "https://rest.fal.ai",
        "https://v3.fal.media",
        "fal.run",
        "queue.fal.run",
    ], "fal_client's import-time constants are restored"
    assert after["cached"] == [], "the emulator-bound httpx client and credentials are dropped"


def test_a_session_that_does_not_use_the_fixture_is_untouched(
    pytester: pytest.Pytester, users_env: dict[str, str]
) -> None:
    pytester.makepyfile(
        test_plain="""
        import os
        import sys

        import fal_client

        USERS = {"FAL_KEY": "users-own-key", "FAL_KEY_ID": "users-key-id", "FAL_KEY_SECRET": "users-key-secret"}
        AT_IMPORT = {k: v for k, v in os.environ.items() if k.startswith("FAL") or k == "SSL_CERT_FILE"}

        def test_nothing_changes(request):
            assert request.config.pluginmanager.has_plugin("fal_emulator")  # loaded, by its entry point
            now = {k: v for k, v in os.environ.items() if k.startswith("FAL") or k == "SSL_CERT_FILE"}
            assert now == AT_IMPORT == USERS
            assert fal_client.client.QUEUE_URL_FORMAT == "https://queue.fal.run/"
            assert "_client" not in vars(fal_client.sync_client)
            server_parts = ("fal_emulator.testing", "fal_emulator.control", "fal_emulator.server")
            assert [name for name in server_parts if name in sys.modules] == [], "no server, nor its code, is loaded"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=TIMEOUT)
    result.assert_outcomes(passed=1)


def test_the_configured_policy_and_server_flags_are_the_baseline_each_test_returns_to(
    pytester: pytest.Pytester, users_env: dict[str, str]
) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nfal_emulator_policy = "manual"\nfal_emulator_args = "--time-scale 3"\n'
    )
    pytester.makepyfile(
        test_manual="""
        import fal_client

        I2V = "fal-ai/veo3/image-to-video"
        ARGS = {"prompt": "A lego chef cooks eggs", "image_url": "https://example.com/chef.png"}

        def test_manual_from_pyproject(fal_emulator):
            assert fal_emulator.policy()["default"] == "manual" and fal_emulator.clock()["scale"] == 3
            handle = fal_client.submit(I2V, arguments=ARGS)
            assert isinstance(handle.status(), fal_client.Queued)
            fal_emulator.complete(handle.request_id)
            assert handle.get()["video"]
            fal_emulator.set_policy("instant")
            fal_emulator.set_scale(1)

        def test_back_to_manual(fal_emulator):
            assert fal_emulator.policy()["default"] == "manual" and fal_emulator.clock()["scale"] == 3
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=TIMEOUT)
    result.assert_outcomes(passed=2)


def test_a_server_that_cannot_start_fails_the_tests_with_its_output(
    pytester: pytest.Pytester, users_env: dict[str, str]
) -> None:
    pytester.makepyfile(test_broken="def test_it(fal_emulator):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fal-emulator-policy", "sometimes")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fal-emulator exited with * before ready*", "*progression policy 'sometimes'*"])


def test_the_policy_comes_from_the_command_line_then_the_ini_file(pytester: pytest.Pytester) -> None:
    assert policy_of(pytester.parseconfig()) == DEFAULT_POLICY == "instant"
    pytester.makeini("[pytest]\nfal_emulator_policy = default\n")
    assert policy_of(pytester.parseconfig()) == "default"
    assert policy_of(pytester.parseconfig("--fal-emulator-policy", "polls:2")) == "polls:2"


def test_the_readme_examples_pass(pytester: pytest.Pytester, users_env: dict[str, str]) -> None:
    examples = sorted(EXAMPLES.glob("test_*.py"))
    assert examples
    for path in examples:
        pytester.makepyfile(**{path.stem: path.read_text()})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=TIMEOUT)
    expected = sum(path.read_text().count("\ndef test_") for path in examples)
    result.assert_outcomes(passed=expected)


def readme_examples() -> dict[str, str]:
    """The README's Python blocks whose first line names a file under tests/examples/."""
    blocks = re.findall(r"```python\n(# (tests/examples/\S+\.py)\n.*?)```", README.read_text(), re.DOTALL)
    return {name: text for text, name in blocks}


def test_the_readme_shows_the_examples_verbatim() -> None:
    if "## Testing with pytest" not in README.read_text():
        pytest.skip("the README has no 'Testing with pytest' section yet")
    shown = readme_examples()
    files = {f"tests/examples/{path.name}": path.read_text() for path in sorted(EXAMPLES.glob("test_*.py"))}
    assert shown == files


def test_a_project_with_its_own_emulator_and_contracts_packages_keeps_both(
    pytester: pytest.Pytester, users_env: dict[str, str]
) -> None:
    """Our packages install as `fal_emulator` and `fal_emulator.contracts`: a user's `emulator/` and
    `contracts/` packages (first on sys.path, as pytest's rootdir puts them) never shadow the plugins."""
    pytester.mkpydir("emulator").joinpath("__init__.py").write_text("USERS = 'emulator'\n")
    pytester.mkpydir("contracts").joinpath("__init__.py").write_text("USERS = 'contracts'\n")
    pytester.makepyfile(
        test_mine="""
        import fal_client

        import contracts
        import emulator

        def test_both_plugins_and_my_packages(fal_emulator, fal_contracts):
            assert (emulator.USERS, contracts.USERS) == ("emulator", "contracts")
            result = fal_client.subscribe("fal-ai/veo3", arguments={"prompt": "a lego chef"})
            assert result["video"]["url"].startswith(fal_emulator.url)
            assert callable(fal_contracts)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "fal_emulator.contracts.pytest_plugin", timeout=TIMEOUT
    )
    result.assert_outcomes(passed=1)
