"""Rules that rest on an inference (`rules.INFERRED`) are enforced against an emulator and only warned about
elsewhere: a real fal whose status stream sends each event's whole log list is not called broken on a guess
(DIVERGENCES.md #22), while the emulator's broken variants still fail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fal_emulator.contracts import rules
from fal_emulator.contracts.documents import load_contracts
from fal_emulator.contracts.lifecycle import LifecycleMachine
from fal_emulator.contracts.loopback import LoopbackServer
from fal_emulator.contracts.model import Broken, MachineContext, Tracked
from fal_emulator.contracts.profiles import get_profile
from fal_emulator.contracts.report import SuiteResult
from fal_emulator.contracts.target import Target, TargetKind
from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings
from tests.contracts.conftest import ENDPOINT, SEED, Generations, as_real_fal
from tests.contracts.variants import variants


@pytest.fixture
def full_log_lists() -> Iterator[str]:
    """A stand-in whose status stream sends, in each event, every log line so far (not only the new ones).
    `polls:1`: a stream sees IN_QUEUE, IN_PROGRESS with one line, then COMPLETED with the rest."""
    app = create_app(Settings(policy="polls:1", seed=SEED, stream_keepalive=1.0))
    server = LoopbackServer(as_real_fal(variants()["sse_repeats_log_lines"].wrap(app), Generations()))
    try:
        yield server.start()
    finally:
        server.stop()


def stream_once(base_url: str, kind: TargetKind) -> MachineContext:
    """Submit one request, then run the machine's `stream` rule on it (logs asked for) against `kind`."""
    target = Target(kind=kind, base_url=base_url, run_base_url=f"{base_url}/run", authorization="Key k", verify=False)
    [endpoint] = load_contracts((ENDPOINT,))
    with target.client() as client:
        context = MachineContext(target, [endpoint], client, get_profile("ci"))
        machine = LifecycleMachine(context)
        submitted = client.post(context.url(endpoint.endpoint_id), json={"prompt": "a lighthouse"}).json()
        machine.model[submitted["request_id"]] = Tracked(submitted["request_id"], endpoint, {"prompt": "a lighthouse"})
        machine.stream(submitted["request_id"], True)
    return context


def test_whole_log_lists_are_a_labelled_warning_against_a_target_that_is_not_an_emulator(full_log_lists: str) -> None:
    context = stream_once(full_log_lists, "remote")
    [warning] = context.warnings
    assert warning.startswith("[sse_matches_polling] (an inferred rule: ")
    assert "DIVERGENCES.md #22" in warning and "differ from the lines polled" in warning
    suite = SuiteResult("lifecycle", warnings=context.warnings)
    assert suite.ok  # a warning is not a failure


def test_the_same_stream_is_a_violation_against_an_emulator(full_log_lists: str) -> None:
    with pytest.raises(Broken) as broken:
        stream_once(full_log_lists, "emulator")
    assert broken.value.rule == "sse_matches_polling"


def test_the_rule_list_says_which_part_is_inferred() -> None:
    assert set(rules.INFERRED) <= set(rules.RULES)
    assert "(inferred)" in rules.RULES["sse_matches_polling"]
