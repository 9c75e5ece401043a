from __future__ import annotations

from pathlib import Path

import pytest

from fal_emulator.settings import Settings


def test_settings_come_from_prefixed_environment_variables(tmp_path: Path) -> None:
    environ = {
        "FAL_EMULATOR_HTTP_PORT": "9000",
        "FAL_EMULATOR_TIME_SCALE": "2.5",
        "FAL_EMULATOR_KEYS": "a, b",
        "FAL_EMULATOR_SEED": "3",
        "FAL_EMULATOR_STATE_DIR": str(tmp_path),
        "UNRELATED": "x",
    }
    settings = Settings.from_env(environ)
    assert (settings.http_port, settings.time_scale, settings.keys, settings.seed) == (9000, 2.5, ("a", "b"), 3)
    assert settings.state_dir == tmp_path


def test_flags_override_the_environment() -> None:
    settings = Settings.from_env({"FAL_EMULATOR_POLICY": "manual"}, policy="instant", seed=None)
    assert settings.policy == "instant"


def test_the_state_dir_defaults_under_xdg_state_home() -> None:
    assert Settings.from_env({"XDG_STATE_HOME": "/x"}).state_dir == Path("/x/fal-emulator")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FAL_EMULATOR_HTTP_PORT": "x"}, "FAL_EMULATOR_HTTP_PORT"),
        ({"FAL_EMULATOR_POLICY": "sometimes"}, "progression policy"),
        ({"FAL_EMULATOR_TIME_SCALE": "0"}, "time_scale"),
        ({"FAL_EMULATOR_HTTPS_PORT": "70000"}, "out of range"),
        ({"FAL_EMULATOR_CONCURRENCY": "0"}, "concurrency"),
        ({"FAL_EMULATOR_CONCURRENCY": "two"}, "FAL_EMULATOR_CONCURRENCY"),
        ({"FAL_EMULATOR_RETENTION": "a while"}, "retention"),
        ({"FAL_EMULATOR_STORE": "postgres"}, "unknown store"),
    ],
)
def test_bad_settings_raise_value_error_naming_them(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(environ)


def test_an_unknown_setting_is_ignored_with_a_warning_naming_it() -> None:
    with pytest.warns(UserWarning, match="FAL_EMULATOR_NOPE"):
        settings = Settings.from_env({"FAL_EMULATOR_NOPE": "1", "FAL_EMULATOR_SEED": "4"})
    assert settings.seed == 4


def test_the_runner_settings_default_to_no_limit_and_fals_retention() -> None:
    settings = Settings.from_env({})
    assert (settings.concurrency, settings.result_retention.describe(), settings.store) == (None, "fal", "memory")
    chosen = Settings.from_env({"FAL_EMULATOR_CONCURRENCY": "2", "FAL_EMULATOR_RETENTION": "600"})
    assert (chosen.concurrency, chosen.result_retention.seconds) == (2, 600.0)
