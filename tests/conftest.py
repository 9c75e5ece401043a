from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from starlette.testclient import TestClient

from fal_emulator.catalog import load_catalog
from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from fal_emulator.testing import EmulatorProcess
from tests.redis_server import RedisServer, needs_redis_server
from tests.stores import STORES, redis_url
from tests.webhook_receiver import Receiver

KEY = {"Authorization": "Key test-key"}
CATALOG = load_catalog()  # parsed once for every in-process app

SEED_REQUESTS: dict[str, dict[str, Any]] = {
    "fal-ai/veo3/image-to-video": {
        "prompt": 'A woman looks into the camera, breathes in, then exclaims energetically, "have you guys checked out '
        "Veo3 Image-to-Video on Fal? It's incredible!\"",
        "image_url": "https://storage.googleapis.com/falserverless/example_inputs/veo3-i2v-input.png",
        "aspect_ratio": "auto",
        "duration": "8s",
        "generate_audio": True,
        "resolution": "720p",
    },
    "fal-ai/veo2/image-to-video": {
        "prompt": "A lego chef cooking eggs",
        "image_url": "https://fal.media/files/elephant/6fq8JDSjb1osE_c3J_F2H.png",
        "aspect_ratio": "auto",
        "duration": "5s",
    },
    "fal-ai/veo3.1/reference-to-video": {
        "prompt": "A chimpanzee wearing overalls frolics in the grassy field, gently playing with the butterflies. "
        "In the background, a circus tent and carousel beckon.",
        "aspect_ratio": "16:9",
        "duration": "8s",
        "resolution": "720p",
        "generate_audio": True,
        "image_urls": [
            "https://storage.googleapis.com/falserverless/example_inputs/veo31-r2v-input-1.png",
            "https://storage.googleapis.com/falserverless/example_inputs/veo31-r2v-input-2.png",
            "https://storage.googleapis.com/falserverless/example_inputs/veo31-r2v-input-3.png",
        ],
    },
    "fal-ai/veo3.1/fast/image-to-video": {
        "prompt": 'A woman looks into the camera, breathes in, then exclaims energetically, "have you guys checked out '
        "Veo3 Image-to-Video on Fal? It's incredible!\"",
        "image_url": "https://storage.googleapis.com/falserverless/example_inputs/veo3-i2v-input.png",
    },
}
# (width, height, seconds, audio) each seed example asks for.
SEED_CLIPS = {
    "fal-ai/veo3/image-to-video": (1280, 720, 8, True),
    "fal-ai/veo2/image-to-video": (1280, 720, 5, False),
    "fal-ai/veo3.1/reference-to-video": (1280, 720, 8, True),
    "fal-ai/veo3.1/fast/image-to-video": (1280, 720, 8, True),
}

ClientFactory = Callable[..., TestClient]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (skips the test, saying why, without redis-server)."""
    needs_redis_server()
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=STORES)
def make_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClientFactory]:
    """In-process clients of emulators built with the given settings (seed 7, polls:1 by default), each
    with its own state dir, over each store: the suite runs once per store (memory, SQLite, Redis). A
    client made again with the same `state_dir` finds the same state (a restart)."""
    clients: list[TestClient] = []
    redis_urls: dict[object, str] = {}  # state dir -> its own Redis database

    def make(**overrides: object) -> TestClient:
        state_dir = overrides.get("state_dir", tmp_path / f"state{len(clients)}")
        values: dict[str, object] = {
            "seed": 7, "policy": "polls:1", "state_dir": state_dir, "store": request.param, **overrides,
        }  # fmt: skip
        if request.param == "redis":
            values["redis_url"] = redis_urls.get(state_dir) or redis_urls.setdefault(state_dir, redis_url(request))
        app = create_app(Settings(**values), catalog=CATALOG)  # type: ignore[arg-type]
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()


@contextlib.contextmanager
def imported_fal_client(server: EmulatorProcess) -> Iterator[ModuleType]:
    """fal_client, imported after FAL_QUEUE_RUN_HOST, FAL_RUN_HOST, FAL_KEY and SSL_CERT_FILE point at `server`.

    fal_client reads its hosts at import, so it must not have been imported before; it is unloaded after.
    """
    assert "fal_client" not in sys.modules, "fal_client was imported before the emulator environment was set"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.client_env().items():
            patch.setenv(name, value)
        module = importlib.import_module("fal_client")
        try:
            yield module
        finally:
            if "_client" in vars(module.sync_client):  # the default client's connection pool (cached_property)
                module.sync_client._client.close()
            for name in [name for name in sys.modules if name == "fal_client" or name.startswith("fal_client.")]:
                del sys.modules[name]


@pytest.fixture(scope="module")
def fal(server: EmulatorProcess) -> Iterator[ModuleType]:
    """fal_client pointed at the requesting module's `server` (each end-to-end module starts its own)."""
    with imported_fal_client(server) as module:
        yield module


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback webhook receiver, running for the test (its `url`, `statuses` to answer, `next()`)."""
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
