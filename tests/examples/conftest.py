"""The README's pytest examples, collected here only when this directory is all that was asked for.

They `import fal_client` at module top, as a user's tests do. Collected along with the rest of the suite,
that import would happen in the suite's own process, at collection, before tests/test_e2e_fal_client.py
checks that fal_client is first imported once its environment points at the emulator. So `pytest
tests/examples` runs them here, and the whole suite runs them in a child pytest instead
(tests/test_pytest_plugin.py::test_the_readme_examples_pass).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def only_examples(config: pytest.Config) -> bool:
    """Were only paths inside this directory asked for?"""
    asked = [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]
    return bool(asked) and all(path == HERE or HERE in path.parents for path in asked)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name.startswith("test_") and collection_path.suffix == ".py":
        return None if only_examples(config) else True
    return None
