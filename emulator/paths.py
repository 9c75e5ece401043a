"""Where the emulator's data lives: the `openapi/` documents, the `fixtures/` clips and the price file.

In a source checkout (or an editable install) they are the repository's top-level folders; in a
wheel they are packaged under `fal_emulator/_data/` (see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder `name` (`"openapi"` or `"fixtures"`), packaged copy first."""
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


OPENAPI_DIR = data_dir("openapi")
FIXTURES_DIR = data_dir("fixtures")


def _prices_file() -> Path:
    """The contract kit's price file: `fal_emulator/contracts/prices.yaml` (package data), read as data only."""
    packaged = _PACKAGE / "contracts" / "prices.yaml"
    return packaged if packaged.is_file() else _PACKAGE.parent / "contracts" / "prices.yaml"


PRICES_FILE = _prices_file()
