"""The oldest and newest release of each official client, unmodified, against a real emulator.

fal_client in proxy mode (only `fal-emulator env --proxy`'s variables), @fal-ai/client through both README
recipes; each runs subscribe, submit/status/result/cancel, run and upload (tests/client_matrix.py has the
harness, tests/matrix/ the drivers). Each row must read as the README's matrix table shows it.
`scripts/client-matrix` runs every release. Venvs and npm folders are kept in `.matrix/` (gitignored); the
tests install nothing (no network but loopback): `scripts/test` prepares them first with
`scripts/client-matrix --prepare`, and a cell not prepared skips naming that command.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fal_emulator.testing import EmulatorProcess
from tests import client_matrix
from tests.client_matrix import Cell, Unavailable

README = Path(__file__).resolve().parent.parent / "README.md"
CI_CELLS = client_matrix.CI_CELLS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    process = client_matrix.matrix_server(tmp_path_factory.mktemp("matrix-state"))
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize(("kind", "version", "recipe"), CI_CELLS, ids=["-".join(filter(None, c)) for c in CI_CELLS])
def test_release(server: EmulatorProcess, kind: str, version: str, recipe: str) -> None:
    try:
        cell: Cell = (
            client_matrix.run_python(version, server)
            if kind == "python"
            else client_matrix.run_js(version, recipe, server)
        )
    except Unavailable as exc:
        pytest.skip(str(exc))
    assert cell.ok, f"{cell.row()}\n{cell.log[-4000:]}"
    assert cell.row() in README.read_text(), f"README's matrix table lacks or differs from:\n{cell.row()}"


def test_the_table_lists_every_release_once() -> None:
    text = README.read_text()
    table = client_matrix.table([])
    assert table in text  # the header
    for version in client_matrix.PYTHON_RELEASES:
        assert text.count(f"| `fal-client` {version} |") == 1, version
    for version in client_matrix.JS_RELEASES:
        assert text.count(f"| `@fal-ai/client` {version} |") == len(client_matrix.JS_RECIPES), version


def test_a_release_not_prepared_skips_naming_the_command_that_prepares_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_matrix, "CACHE", tmp_path)
    with pytest.raises(Unavailable, match=r"not installed in .*: run `scripts/client-matrix --prepare`"):
        client_matrix.python_venv("1.0.3")
    if shutil.which("node") and shutil.which("npm"):
        with pytest.raises(Unavailable, match=r"run `scripts/client-matrix --prepare`"):
            client_matrix.js_folder("1.10.1")
    assert list(tmp_path.iterdir()) == []  # nothing was installed


def test_proxy_url_cells_before_1_10_say_browser_only() -> None:
    text = README.read_text()
    for version in client_matrix.BROWSER_ONLY_PROXY:
        cell = Cell("@fal-ai/client", version, "proxyUrl", {op: (True, "") for op in client_matrix.OPERATIONS})
        assert cell.row().count("✅ (browser only)") == len(client_matrix.OPERATIONS)
        assert cell.row() in text
    newest = Cell("@fal-ai/client", "1.10.1", "proxyUrl", {op: (True, "") for op in client_matrix.OPERATIONS})
    assert "browser only" not in newest.row() and newest.row() in text
