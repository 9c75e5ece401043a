"""Every route is described by an OpenAPI document, and every described operation is a route: fal's documents
(`openapi/`) for the queue, `/_emulator/openapi.json` for the control plane and storage, and
`/_emulator/openapi-sync.json` for the synchronous host and the result alias."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.testclient import TestClient

from fal_emulator.failures import FAILURES
from fal_emulator.http.app import ROUTES
from fal_emulator.scenarios import parse_scenario
from tests.conftest import CATALOG

METHODS = ("get", "put", "post", "delete", "patch", "head")
JSON = dict[str, Any]


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, JSON]:
    from fal_emulator.http.app import create_app
    from fal_emulator.settings import Settings

    app = create_app(Settings(state_dir=tmp_path_factory.mktemp("docs")), catalog=CATALOG)
    client = TestClient(app)
    found = {endpoint.endpoint_id: dict(endpoint.document) for endpoint in CATALOG}
    for name in ("openapi.json", "openapi-sync.json"):
        answer = client.get(f"/_emulator/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
        found[name] = answer.json()
    return found


def operations(documents: dict[str, JSON]) -> list[tuple[str, str, str]]:
    """(document, METHOD, path template) of every described operation."""
    return [(name, method.upper(), path) for name, document in documents.items()
            for path, item in document["paths"].items() for method in METHODS if method in item]  # fmt: skip


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def route_for(method: str, path: str) -> BaseRoute | None:
    """The route Starlette's router picks for `method path` (the first full match), or None."""
    scope = {"type": "http", "method": method, "path": path, "path_params": {}}
    for route in ROUTES:
        if route.matches(scope)[0] is Match.FULL:
            return route
    return None


def test_the_documents_load_as_openapi(documents: dict[str, JSON]) -> None:
    for name in ("openapi.json", "openapi-sync.json"):
        schema = schemathesis.openapi.from_dict(documents[name])
        assert len(list(schema.get_all_operations())) > 10, name


def test_every_described_operation_is_routed(documents: dict[str, JSON]) -> None:
    for name, method, path in operations(documents):
        route = route_for(method, concrete(path))
        assert route is not None, f"{name}: {method} {path} reaches no route"
        if route is ROUTES[-1]:  # the catch-all submit: only for a known endpoint id
            assert CATALOG.get(path) is not None, f"{name}: {method} {path} falls through to submit"


def test_every_route_is_described(documents: dict[str, JSON]) -> None:
    described = {(method, id(route_for(method, concrete(path)))) for _, method, path in operations(documents)}
    for route in ROUTES:
        if isinstance(route, Mount):  # static files: every file under it is GET
            assert ("GET", id(route)) in described, f"GET {route.path}/... is in no OpenAPI document"
            continue
        assert isinstance(route, Route) and route.methods is not None
        for method in sorted(route.methods - {"HEAD"}):
            assert (method, id(route)) in described, f"{method} {route.path} is in no OpenAPI document"


def test_the_filled_enums_follow_the_catalogue(documents: dict[str, JSON]) -> None:
    schemas = documents["openapi.json"]["components"]["schemas"]
    assert schemas["EndpointId"]["enum"] == [endpoint.endpoint_id for endpoint in CATALOG]
    assert schemas["ErrorType"]["enum"] == sorted(FAILURES)
    for token in schemas["Scenario"]["enum"]:
        parse_scenario(token)  # each is a valid scenario
    sync_paths = documents["openapi-sync.json"]["paths"]
    assert len(sync_paths) == 3 * len(CATALOG)


def test_the_control_plane_document_asks_for_the_token_only_when_the_server_has_one(tmp_path: Path) -> None:
    """A stock tool reading the document must not expect a 401 from a server that answers loopback clients
    without a token, and must send the token to one that has it."""
    from fal_emulator.http.app import create_app
    from fal_emulator.settings import Settings

    def document(**settings: object) -> dict[str, Any]:
        app = create_app(Settings(state_dir=tmp_path, **settings))  # type: ignore[arg-type]
        answer: dict[str, Any] = TestClient(app).get("/_emulator/openapi.json").json()
        return answer

    tokened, open_ = document(control_token="t"), document()
    assert tokened["security"] == [{"controlToken": []}]
    assert open_["security"] == [] and "controlToken" not in json.dumps(open_)
    assert set(open_["paths"]) == set(tokened["paths"])  # the same operations, only the requirement differs
