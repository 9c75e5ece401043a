from __future__ import annotations

from pathlib import Path

import pytest

from fal_emulator.catalog import load_catalog
from fal_emulator.cli import endpoints_table, env_lines, errors_table, main
from fal_emulator.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_endpoint_table_is_the_catalogue() -> None:
    assert endpoints_table(load_catalog()) in (ROOT / "README.md").read_text()


def test_the_readme_error_table_is_the_failure_catalogue() -> None:
    assert errors_table() in (ROOT / "README.md").read_text()


def test_serve_flags_reach_the_settings(tmp_path: Path) -> None:
    from fal_emulator.cli import _parser, _settings

    args = _parser().parse_args(
        ["serve", "--state-dir", str(tmp_path), "--prompt-scenarios", "--control-token", "t", "--webhook-allow", "h"]
    )
    settings = _settings(args)
    assert (settings.prompt_scenarios, settings.control_token, settings.webhook_allow) == (True, "t", ("h",))


def test_env_without_a_running_server_uses_the_configured_port(tmp_path: Path) -> None:
    lines = env_lines(Settings(state_dir=tmp_path, https_port=9443))
    assert lines == [
        "export FAL_KEY=fal-emulator-key",
        "export FAL_QUEUE_RUN_HOST=127.0.0.1:9443",
        "export FAL_RUN_HOST=127.0.0.1:9443/run",
        f"export SSL_CERT_FILE={tmp_path}/tls/bundle.pem",
    ]
    assert (tmp_path / "tls" / "bundle.pem").exists()


def test_env_exports_the_first_accepted_key(tmp_path: Path) -> None:
    assert env_lines(Settings(state_dir=tmp_path, keys=("k1", "k2")))[0] == "export FAL_KEY=k1"


def test_serve_help_documents_ports_host_state_dir_and_timing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    for flag in ("--host", "--http-port", "--https-port", "--state-dir", "--policy", "--instant", "--realistic"):
        assert flag in text
    assert "--time-scale" in text


def test_a_bad_setting_is_a_clear_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAL_EMULATOR_HTTP_PORT", "eighty")
    assert main(["env"]) == 2
    assert "FAL_EMULATOR_HTTP_PORT" in capsys.readouterr().err
