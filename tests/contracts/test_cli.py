"""`fal-emulator contracts`: its commands, its usage errors, and its JUnit report."""

from __future__ import annotations

import socket

import pytest

from fal_emulator.cli import main as emulator_main
from fal_emulator.contracts import RULES, cli
from fal_emulator.contracts.junit import junit_xml
from fal_emulator.contracts.report import Report, SuiteResult, Violation
from fal_emulator.contracts.target import authorization_header, ca_bundle


def test_fal_emulator_contracts_rules_lists_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert emulator_main(["contracts", "rules"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == list(RULES)


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--endpoint", "fal-ai/veo9"], "no contract for endpoint 'fal-ai/veo9'; known: fal-ai/veo2"),
        (["--profile", "nightly"], "unknown profile 'nightly'; use one of ci, default, thorough"),
        (["--allow-spend", "-1"], "--allow-spend must be >= 0"),
    ],
)
def test_unusable_options_exit_2_with_the_reason(
    arguments: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", *arguments]) == 2
    assert complaint in capsys.readouterr().err


def test_an_unreachable_target_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert cli.main(["run", "--base-url", f"http://127.0.0.1:{port}", "--key", "k"]) == 2
    assert f"cannot reach http://127.0.0.1:{port}" in capsys.readouterr().err


def test_the_key_becomes_an_authorization_header() -> None:
    assert authorization_header("abc:def") == "Key abc:def"
    assert authorization_header("Key abc") == "Key abc"
    assert authorization_header("Bearer eyJ") == "Bearer eyJ"
    assert authorization_header("bearer") == "Key bearer"


def test_the_ca_bundle_is_the_option_then_ssl_cert_file_then_the_systems() -> None:
    assert ca_bundle("/a.pem", {"SSL_CERT_FILE": "/b.pem"}) == "/a.pem"
    assert ca_bundle(None, {"SSL_CERT_FILE": "/b.pem"}) == "/b.pem"
    assert ca_bundle(None, {}) is True


def test_the_junit_report_fails_the_endpoint_once_per_broken_rule() -> None:
    violation = Violation("queue_position_only_in_queue", "an IN_QUEUE status must carry queue_position",
                          "openapi", endpoint="fal-ai/veo2", request="curl -X GET http://x/status")  # fmt: skip
    suite = SuiteResult("openapi", cases=10, violations=[violation], errors=["boom"])
    report = Report("http://x (emulator)", 7, "ci", ["fal-ai/veo2", "fal-ai/veo3"], [suite])
    root = junit_xml(report).getroot()
    assert root is not None
    assert (root.get("tests"), root.get("failures")) == ("3", "1")
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert set(cases) == {"fal-ai/veo2", "fal-ai/veo3", "(run)"}
    failure = cases["fal-ai/veo2"].find("failure")
    assert failure is not None
    assert failure.get("type") == "queue_position_only_in_queue"
    assert "curl -X GET http://x/status" in (failure.text or "")
    assert cases["fal-ai/veo3"].find("failure") is None
    assert cases["(run)"].find("error") is not None


def test_the_summary_names_the_rule_the_request_and_the_seed() -> None:
    violation = Violation("status_code_by_state", "status IN_PROGRESS must be answered with HTTP 202, got 200",
                          "lifecycle", endpoint="fal-ai/veo2", request="GET http://x/fal-ai/veo2/requests/r/status",
                          reproduce="state.poll(...)")  # fmt: skip
    report = Report("http://x (emulator)", 42, "ci", ["fal-ai/veo2"], [SuiteResult("lifecycle", 5, 1.0, [violation])])
    summary = report.summary()
    assert "[status_code_by_state] fal-ai/veo2 (lifecycle)" in summary
    assert "GET http://x/fal-ai/veo2/requests/r/status" in summary
    assert "state.poll(...)" in summary
    assert summary.splitlines()[-2].endswith("FAILED: status_code_by_state")
    assert summary.splitlines()[-1] == "reproduce with: --seed 42 --profile ci (plus the same target options)"
