"""The oldest and newest release of each official client, unmodified, against a real emulator.

fal_client in proxy mode (only `fal-emulator env --proxy`'s variables), @fal-ai/client through both README
recipes; each runs subscribe, submit/status/result/cancel, run and upload (tests/client_matrix.py has the
harness, tests/matrix/ the drivers). Each row must read as the README's matrix table shows it.
`scripts/client-matrix` runs every release. Venvs and npm folders are kept in `.matrix/` (gitignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fal_emulator.testing import EmulatorProcess
from tests import client_matrix
from tests.client_matrix import Cell, Unavailable

README = Path(__file__).resolve().parent.parent / "README.md"
CI_CELLS = [
    ("python", client_matrix.PYTHON_RELEASES[0], ""),
    ("python", client_matrix.PYTHON_RELEASES[-1], ""),
    *[("js", version, recipe) for version in (client_matrix.JS_RELEASES[0], client_matrix.JS_RELEASES[-1])
      for recipe in client_matrix.JS_RECIPES],
]  # fmt: skip


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
