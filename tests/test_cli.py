from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fal_emulator.catalog import load_catalog
from fal_emulator.cli import endpoints_table, errors_table, main
from fal_emulator.exports import env_lines
from fal_emulator.server import Listening

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


def test_env_without_a_running_server_says_so_and_exports_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["env", "--state-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"no fal-emulator is running with the state dir {tmp_path}" in err and "fal-emulator serve" in err


def test_env_on_a_state_dir_that_is_a_file_or_unreadable_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    for state_dir in (tmp_path / "file", Path("/proc/no/such/dir")):
        assert main(["env", "--proxy", "--state-dir", str(state_dir)]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("fal-emulator: ") and "Traceback" not in err


LISTENING = Listening("127.0.0.1", 8470, 8471, "/s/tls/ca.pem", "/s/tls/bundle.pem", 1, proxy_port=8472)


def test_env_lines_host_mode_and_proxy_mode() -> None:
    exported = [line for line in env_lines(LISTENING) if not line.startswith("#")]
    assert exported == [
        "export FAL_KEY=fal-emulator-key",
        "export FAL_QUEUE_RUN_HOST=127.0.0.1:8471",
        "export FAL_RUN_HOST=127.0.0.1:8471/run",
        "export SSL_CERT_FILE=/s/tls/bundle.pem",
        "export REQUESTS_CA_BUNDLE=/s/tls/bundle.pem",
        "export CURL_CA_BUNDLE=/s/tls/bundle.pem",
        "export NODE_EXTRA_CA_CERTS=/s/tls/ca.pem",
    ]
    proxied = env_lines(LISTENING, key="k1", proxy=True)
    assert "export HTTPS_PROXY=http://127.0.0.1:8472" in proxied and "export FAL_KEY=k1" in proxied
    assert 'export NO_PROXY="${NO_PROXY:+$NO_PROXY,}"localhost,127.0.0.1,::1' in proxied
    assert proxied[-1] == "unset FAL_QUEUE_RUN_HOST FAL_RUN_HOST"
    assert any("403" in line for line in proxied if line.startswith("#"))  # says what the proxy refuses


@pytest.mark.parametrize("before", [None, "", "internal.example.com,.corp", "a b;$(touch pwned)"])
def test_env_proxy_keeps_the_users_no_proxy_and_adds_loopback(before: str | None, tmp_path: Path) -> None:
    """`eval "$(fal-emulator env --proxy)"` in a shell that has NO_PROXY / no_proxy: both keep their entries."""
    script = "\n".join(env_lines(LISTENING, proxy=True)) + '\nprintf "%s\\n%s\\n" "$NO_PROXY" "$no_proxy"'
    env = {"PATH": os.environ["PATH"]}
    if before is not None:
        env |= {"NO_PROXY": before, "no_proxy": before}
    done = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    expected = f"{before},localhost,127.0.0.1,::1" if before else "localhost,127.0.0.1,::1"
    assert done.stdout.splitlines() == [expected, expected]
    assert not (tmp_path / "pwned").exists()


def test_contracts_without_its_extra_prints_the_pip_command() -> None:
    """As if schemathesis were not installed (a None entry in sys.modules makes its import fail)."""
    code = "import sys; sys.modules['schemathesis'] = None; from fal_emulator.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", code, "contracts", "run"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "-m pip install 'fal-emulator[contracts]'" in done.stderr and "schemathesis" in done.stderr


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


def test_the_readme_reads_the_same_on_a_package_index() -> None:
    """PyPI shows README.md without the repository around it: no relative links or images. The quick start
    starts from a clone (`./scripts/serve`), then a pip install that does not assume the package is on an index
    (it is not yet); the other set-up command, `./scripts/test`, comes after the app step."""
    import re

    text = (ROOT / "README.md").read_text()
    relative = re.findall(r"!?\[[^\]]*\]\((?!https?://)([^)]*)\)", text)
    # Except pictures in docs/images/ (issue 13: a first frame beside its input image; issue 11: the dashboard's
    # screenshot): the project has no public URL to make them absolute, so a package index shows their alt text.
    pictures = [target for target in relative if target.startswith("docs/images/") and (ROOT / target).is_file()]
    assert relative == pictures and len(pictures) <= 4
    assert "LICENSE" in (ROOT / "pyproject.toml").read_text() and (ROOT / "LICENSE").read_text().startswith("MIT")
    quick_start = text[text.index("## Quick start") :]
    blocks = re.findall(r"```sh\n(.*?)```", quick_start, re.DOTALL)
    commands = [[line.split("#")[0].strip() for line in block.splitlines()] for block in blocks[:3]]
    assert commands[0] == ["./scripts/serve"]
    assert commands[1][0].startswith("pip install /") and commands[1][1] == "fal-emulator serve"
    assert commands[2] == ['eval "$(fal-emulator env --proxy)"']
    # the test command comes after the app step, not between serving and using the emulator (issue 9)
    assert quick_start.index('eval "$(fal-emulator env --proxy)"') < quick_start.index("./scripts/test")
    assert "pip install fal-emulator" not in text  # not on PyPI: it would fail, or install someone else's package
    assert 'name = "fal-emulator"' in (ROOT / "pyproject.toml").read_text()
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("./scripts/test")  # CI runs the README's command


def test_every_repository_path_the_readme_names_exists() -> None:
    import re

    text = (ROOT / "README.md").read_text()
    named = re.findall(r"(?<![\w/.-])(?:\./)?((?:tests|scripts|contracts|benchmarks|fixtures|openapi)/[\w./-]*)", text)
    assert "tests/test_e2e_routes.py" in named
    missing = sorted({path.rstrip(".") for path in named if not (ROOT / path.rstrip(".")).exists()})
    assert missing == []


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        ('{"url": "file:///home/you/fal%20emulator", "dir_info": {}}', ["/home/you/fal emulator[contracts]"]),
        ('{"url": "file:///src/fal-emulator", "dir_info": {"editable": true}}', ["-e", "/src/fal-emulator[contracts]"]),
        (
            '{"url": "https://example.com/fal-emulator.git", "vcs_info": {"vcs": "git", "commit_id": "abc"}}',
            ["fal-emulator[contracts] @ git+https://example.com/fal-emulator.git"],
        ),
        (None, ["fal-emulator[contracts]"]),
    ],
)
def test_the_kit_extra_is_installed_from_where_the_emulator_came_from(
    monkeypatch: pytest.MonkeyPatch, direct_url: str | None, expected: list[str]
) -> None:
    """The package is not on PyPI: the pip command printed when the kit's extra is missing names the clone or
    the git URL the emulator was installed from (PEP 610's direct_url.json)."""
    import importlib.metadata

    from fal_emulator.cli import contracts_requirement

    class Distribution:
        def read_text(self, name: str) -> str | None:
            return direct_url if name == "direct_url.json" else None

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Distribution())
    assert contracts_requirement() == expected
