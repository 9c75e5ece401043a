"""Where the emulator's data lives: the `openapi/` documents and the `fixtures/` clips.

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
