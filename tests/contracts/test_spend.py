"""Real fal bills video: what the kit does against a remote target, with and without a budget. The remote
target here is a loopback stand-in (the emulator without its control plane): nothing leaves this machine."""

from __future__ import annotations

import pytest

from fal_emulator.contracts import KitOptions, KitUsageError, run_contracts
from fal_emulator.contracts.documents import cheapest_input, load_contracts
from fal_emulator.contracts.spend import PRICES_FILE, Budget, BudgetExceeded, cheapest_endpoint, load_prices
from tests.contracts.conftest import ENDPOINT, SEED, Generations

CHEAPEST = {"duration": "4s", "resolution": "720p", "generate_audio": False}


def remote(base_url: str, **options: object) -> KitOptions:
    values: dict[str, object] = {"base_url": base_url, "key": "fal-key", "profile": "ci", "seed": SEED, **options}
    return KitOptions(**values)  # type: ignore[arg-type]


def test_against_a_remote_target_only_checks_that_generate_nothing_run_by_default(
    fake_fal: tuple[str, Generations],
) -> None:
    base_url, generations = fake_fal
    report = run_contracts(remote(base_url, run_base_url=f"{base_url}/run", endpoints=(ENDPOINT, "fal-ai/veo2")))
    assert report.ok, report.summary()
    assert generations.inputs == []
    assert "(remote)" in report.target
    assert any("generate no video" in note for note in report.notes)
    suites = {suite.name: suite for suite in report.suites}
    assert suites["openapi"].cases >= 30  # unknown ids, cancels of unknown ids, schemas, headers
    assert suites["lifecycle"].cases > 0  # unknown ids only: nothing was submitted
    assert suites["media"].cases == 2  # one validation rejection per endpoint
    assert any("would generate video" in reason for reason in suites["openapi"].skipped)


def test_with_a_budget_the_kit_generates_only_the_cheapest_videos_within_it(fake_fal: tuple[str, Generations]) -> None:
    base_url, generations = fake_fal
    report = run_contracts(remote(base_url, run_base_url=f"{base_url}/run", allow_spend=1.00))
    assert report.ok, report.summary()
    # The cheapest endpoint at 4 s, 720p, silent costs $0.40: two videos fit in $1.00, a third does not.
    assert len(generations.inputs) == 2
    for arguments in generations.inputs:
        assert {key: arguments[key] for key in CHEAPEST} == CHEAPEST
    assert any(note.startswith("WARNING: real fal bills these checks. fal-ai/veo3.1/fast,") for note in report.notes)
    assert "estimated spend: $0.80 of $1.00 (2 videos)" in report.notes


def test_a_remote_target_needs_a_key(fake_fal: tuple[str, Generations], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAL_KEY", raising=False)
    with pytest.raises(KitUsageError, match="needs a key"):
        run_contracts(KitOptions(base_url=fake_fal[0], suites=("lifecycle",)))


def test_the_budget_refuses_a_charge_past_its_limit() -> None:
    endpoint = load_contracts([ENDPOINT])[0]
    budget = Budget(1.00, load_prices())
    assert budget.charge(endpoint, cheapest_input(endpoint)) == 0.40
    assert budget.charge(endpoint, cheapest_input(endpoint)) == 0.40
    assert not budget.can_afford(endpoint, cheapest_input(endpoint))
    with pytest.raises(BudgetExceeded, match=r"\$0.40; \$0.80 of \$1.00"):
        budget.charge(endpoint, cheapest_input(endpoint))
    assert budget.spent == 0.80
    assert budget.charges == [(ENDPOINT, 0.40), (ENDPOINT, 0.40)]


def test_costs_come_from_the_price_file_per_second_resolution_and_audio() -> None:
    prices = load_prices()
    veo31 = load_contracts(["fal-ai/veo3.1"])[0]
    assert prices.cost(veo31, {"prompt": "p", "duration": "8s", "resolution": "1080p"}) == 3.20  # audio by default
    assert prices.cost(veo31, {"prompt": "p", "duration": "4s", "resolution": "4k", "generate_audio": False}) == 1.60
    assert prices.verified == {"fal-ai/veo3.1", "fal-ai/veo3.1/fast/first-last-frame-to-video"}
    assert PRICES_FILE.name == "prices.yaml"


def test_every_endpoint_has_a_price() -> None:
    prices = load_prices()
    for endpoint in load_contracts():
        assert prices.cost(endpoint, cheapest_input(endpoint)) > 0, endpoint.endpoint_id


def test_the_cheapest_input_is_the_shortest_lowest_resolution_silent_one() -> None:
    endpoint = load_contracts([ENDPOINT])[0]
    assert cheapest_input(endpoint) == {"prompt": endpoint.example_input["prompt"], **CHEAPEST}
    veo2 = load_contracts(["fal-ai/veo2/image-to-video"])[0]
    assert cheapest_input(veo2) == {
        "prompt": veo2.example_input["prompt"],
        "image_url": veo2.example_input["image_url"],
        "duration": "5s",
    }


def test_the_cheapest_endpoint_prefers_fewer_required_inputs_on_a_tie() -> None:
    assert cheapest_endpoint(load_contracts(), load_prices()).endpoint_id == "fal-ai/veo3.1/fast"
