"""pytest plugin (entry point `pytest11: fal_emulator`): the `fal_emulator` fixture.

    import fal_client

    def test_rejection(fal_emulator):
        fal_emulator.fail_next("content_policy_violation")
        with pytest.raises(fal_client.FalClientHTTPError) as caught:
            fal_client.subscribe("fal-ai/veo3/image-to-video", arguments={...})
        assert caught.value.error_type == "content_policy_violation"

Fixtures:

- `fal_emulator_session` (session scope): the first test that asks for it starts one real
  `fal-emulator serve` subprocess on free HTTP and HTTPS ports, with its own state directory and
  throwaway CA, waits for its ready line (no sleeping), and points fal_client at it; the server stops
  and every change is undone when the session ends.
- `fal_emulator` (function scope): the same server, reset before each test (requests, scripted
  outcomes, policies, journal, webhooks, uploads, request ids, clock frozen or scaled). It is an
  `fal_emulator.control.FalEmulator`: `url`, `http_url`, `env`, and the control plane as methods
  (`advance`, `freeze`, `set_policy`, `fail_next`, `script`, `journal`, `webhooks`, `requests`,
  `complete`, `fail`, `jwks`, ...).

Options: `--fal-emulator-policy POLICY` or the ini value `fal_emulator_policy` (default `instant`, so a
`subscribe` returns at once; `default` gives the 2 s lifecycle with every state), and the ini value
`fal_emulator_args` for more `fal-emulator serve` flags (e.g. `--time-scale 10`). Under pytest-xdist
every worker starts its own server.

How fal_client gets pointed at the server (the import-time problem)
-------------------------------------------------------------------
fal_client 1.0.3 reads `FAL_RUN_HOST` / `FAL_QUEUE_RUN_HOST` once, at import, into module constants
(`fal_client.auth.FAL_RUN_HOST`, `fal_client.client.QUEUE_URL_FORMAT`, `RUN_URL_FORMAT`,
`REALTIME_URL_FORMAT`; storage uses the fixed `REST_URL` and `CDN_URL`), while `FAL_KEY` and
`SSL_CERT_FILE` are read when the module-level `sync_client` / `async_client` first create their
cached httpx client. A test module that does `import fal_client` at the top is imported during
collection, before any fixture runs. The alternatives:

1. Set the environment before collection (`pytest_configure`). Every session on a machine with
   fal-emulator installed would then be changed, or would start a server, whether it uses the fixture
   or not; and nothing is known yet about which tests want it. Rejected: installing the package must not
   change a session that does not use the fixture.
2. `importlib.reload(fal_client...)` or dropping it from `sys.modules` when the fixture starts. Modules
   that already did `from fal_client import FalClientHTTPError` keep the old classes, so
   `pytest.raises(fal_client.FalClientHTTPError)` stops matching; module-level clients keep old state.
   Rejected.
3. Intercept at the httpx layer (mount a rewriting transport). Invasive, and it skips the real TLS and
   host handling that the emulator exists to exercise. Rejected.
4. Chosen: do everything when the session fixture starts, and undo it when the session ends, with one
   `pytest.MonkeyPatch`: import fal_client first if it is installed and not imported yet (so its
   constants hold the user's own values, which the undo restores exactly), then redirect its
   import-time constants to the emulator, set `FAL_KEY`, `FAL_QUEUE_RUN_HOST`, `FAL_RUN_HOST` and
   `SSL_CERT_FILE` (for code that reads them later, such as subprocesses the tests start; `FAL_KEY_ID`,
   `FAL_KEY_SECRET` and `FAL_FORCE_AUTH_BY_USER` are removed so the emulator's key wins), add the
   emulator's host to `NO_PROXY` when a proxy is configured, and drop the cached auth, httpx client and
   token manager of `fal_client.sync_client` / `async_client` so they are rebuilt with the emulator's
   key and CA bundle. Only the constants that exist are patched, so other fal_client versions that
   read the environment later still work through the variables.

Once started, the redirect holds until the session ends, for the tests that do not ask for the fixture
too: nothing in that session reaches the real fal. Limits: a `fal_client.SyncClient()` of your own that
already made a call before the fixture started keeps its cached key and CA bundle (its URLs do follow
the redirect); make clients inside tests or fixtures. The module-level `fal_client.async_client` keeps
one connection pool bound to the event loop that first used it (fal_client's own behaviour): with a new
event loop per test, make an `AsyncClient()` per test. The plugin module imports nothing beyond pytest
and the standard library until a test asks for the fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fal_emulator.control import FalEmulator

DEFAULT_POLICY = "instant"
CLEARED_VARIABLES = ("FAL_KEY_ID", "FAL_KEY_SECRET", "FAL_FORCE_AUTH_BY_USER")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fal-emulator", "fal-emulator (the fal_emulator fixture)")
    group.addoption(
        "--fal-emulator-policy",
        dest="fal_emulator_policy",
        default=None,
        metavar="POLICY",
        help="progression policy of the fal_emulator server: instant (the default), default, realistic, "
        "manual, polls:N or timed:QUEUE_S,RUN_S (overrides the fal_emulator_policy ini value)",
    )
    parser.addini(
        "fal_emulator_policy",
        "progression policy of the fal_emulator server (default: instant)",
        default=DEFAULT_POLICY,
    )
    parser.addini("fal_emulator_args", "more `fal-emulator serve` flags for the fal_emulator server", type="args")


def policy_of(config: pytest.Config) -> str:
    """The policy the server starts with: the command line's, else the ini file's, else `instant`."""
    chosen = config.getoption("fal_emulator_policy") or config.getini("fal_emulator_policy")
    return str(chosen or DEFAULT_POLICY)


def _fal_client() -> ModuleType | None:
    try:
        return importlib.import_module("fal_client")
    except ImportError:
        return None


def _redirect_fal_client(patch: pytest.MonkeyPatch, env: Mapping[str, str], url: str) -> None:
    """Point the import-time constants of an imported fal_client at the emulator (undone by `patch`)."""
    run_host, queue_host = env["FAL_RUN_HOST"], env["FAL_QUEUE_RUN_HOST"]
    hosts = {"FAL_RUN_HOST": run_host, "FAL_QUEUE_RUN_HOST": queue_host}
    constants: dict[str, dict[str, str]] = {
        "fal_client.auth": hosts,
        "fal_client.client": {
            **hosts,
            "RUN_URL_FORMAT": f"https://{run_host}/",
            "QUEUE_URL_FORMAT": f"https://{queue_host}/",
            "REALTIME_URL_FORMAT": f"wss://{run_host}/",
            "REST_URL": url,  # storage: /storage/upload/initiate, /storage/auth/token
            "CDN_URL": url,  # storage: /files/upload
        },
    }
    for module_name, values in constants.items():
        submodule = sys.modules.get(module_name)
        for name, value in values.items():
            if submodule is not None and hasattr(submodule, name):
                patch.setattr(submodule, name, value)


def _close(value: Any) -> None:
    """Close a dropped httpx client, best effort (an async one only when no event loop is running)."""
    value = getattr(value, "value", value)  # asyncstdlib caches the result in an AwaitableValue
    close, aclose = getattr(value, "close", None), getattr(value, "aclose", None)
    with contextlib.suppress(Exception):
        if callable(close):
            close()
        elif callable(aclose):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                asyncio.run(aclose())


def drop_cached_clients(module: ModuleType | None) -> None:
    """Forget what `fal_client.sync_client` / `async_client` cached (auth, httpx client, CDN tokens).

    They are `functools.cached_property` / asyncstdlib `cached_property` values in the instance
    `__dict__`; the next call rebuilds them from the environment as it is then.
    """
    if module is None:
        return
    for client in (getattr(module, "sync_client", None), getattr(module, "async_client", None)):
        if client is None:
            continue
        cache, descriptors = vars(client), vars(type(client))
        for name in [name for name in cache if hasattr(descriptors.get(name), "__get__")]:
            _close(cache.pop(name))


def point_fal_client_at(patch: pytest.MonkeyPatch, env: Mapping[str, str], url: str, host: str) -> ModuleType | None:
    """Point fal_client (imported or not) at the emulator for as long as `patch` is not undone.

    Returns the fal_client module, or None when fal_client is not installed.
    """
    module = _fal_client()  # before the environment changes, so that the undo restores the user's values
    for name in CLEARED_VARIABLES:
        patch.delenv(name, raising=False)
    for name, value in env.items():
        patch.setenv(name, value)
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        for name in ("NO_PROXY", "no_proxy"):
            patch.setenv(name, ",".join(filter(None, [os.environ.get(name, ""), host])))
    if module is not None:
        _redirect_fal_client(patch, env, url)
        drop_cached_clients(module)
    return module


@pytest.fixture(scope="session")
def fal_emulator_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FalEmulator]:
    """One real `fal-emulator serve` for the session, with fal_client pointed at it (see the module doc)."""
    from fal_emulator.control import FalEmulator
    from fal_emulator.testing import EmulatorProcess

    policy = policy_of(request.config)
    extra_args = tuple(str(arg) for arg in request.config.getini("fal_emulator_args"))
    process = EmulatorProcess(tmp_path_factory.mktemp("fal-emulator"), policy=policy, extra_args=extra_args)
    patch = pytest.MonkeyPatch()
    module: ModuleType | None = None
    try:
        listening = process.start()
        env = process.client_env()
        emulator = FalEmulator(
            url=listening.https_url,
            http_url=listening.http_url,
            ca_bundle=listening.bundle,
            key=env["FAL_KEY"],
            env=env,
            policy=policy,
        )
        try:
            module = point_fal_client_at(patch, env, listening.https_url, listening.host)
            yield emulator
        finally:
            emulator.close()
    finally:
        patch.undo()
        drop_cached_clients(module)
        process.stop()


@pytest.fixture
def fal_emulator(fal_emulator_session: FalEmulator) -> FalEmulator:
    """The session's emulator, reset for this test; fal_client already points at it."""
    fal_emulator_session.reset()
    return fal_emulator_session
