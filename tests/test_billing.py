"""`x-fal-billable-units` on results: seconds of video weighted by the price file's rates, 0 for a request that
fails validation, absent on other errors and on every other answer."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from fal_emulator.billing import header_value, load_price_list
from tests.conftest import CATALOG, KEY, SEED_REQUESTS

PRICES = load_price_list()
ENDPOINT = "fal-ai/veo3/image-to-video"
HEADER = "x-fal-billable-units"


@pytest.mark.parametrize(
    ("endpoint_id", "resolution", "audio", "seconds", "units"),
    [
        ("fal-ai/veo3.1", "720p", True, 8, 16),  # $0.40/s with audio against the $0.20/s unit
        ("fal-ai/veo3.1", "1080p", False, 8, 8),
        ("fal-ai/veo3.1", "4k", True, 4, 12),  # $0.60/s
        ("fal-ai/veo3.1/fast/first-last-frame-to-video", "720p", True, 8, 12),  # $0.15/s against $0.10/s
        ("fal-ai/veo2", "720p", False, 5, 5),
    ],
)
def test_units_are_seconds_weighted_by_the_rate(
    endpoint_id: str, resolution: str, audio: bool, seconds: int, units: float
) -> None:
    assert PRICES.units(endpoint_id, resolution=resolution, audio=audio, seconds=seconds) == units
    unit_price = PRICES.unit_price(endpoint_id)
    assert unit_price is not None
    rates = PRICES.rates[endpoint_id]
    rate = (rates.get(resolution) or rates["*"])["audio" if audio else "silent"]
    assert units * unit_price == pytest.approx(seconds * rate)  # what fal bills: units x the unit price


def test_every_endpoint_has_a_price() -> None:
    assert {endpoint.endpoint_id for endpoint in CATALOG} <= set(PRICES.rates)
    assert PRICES.units("fal-ai/no-such-model", resolution="720p", audio=False, seconds=8) is None


def test_the_header_is_a_plain_number() -> None:
    assert [header_value(16.0), header_value(12.5), header_value(0)] == ["16", "12.5", "0"]


def test_a_result_and_a_run_carry_the_units_and_nothing_else_does(client: TestClient) -> None:
    submitted = client.post(f"/{ENDPOINT}", json=SEED_REQUESTS[ENDPOINT], headers=KEY)  # 8 s, 720p, audio
    assert HEADER not in submitted.headers
    status = client.get(submitted.json()["status_url"], headers=KEY)
    assert HEADER not in status.headers
    while client.get(submitted.json()["status_url"], headers=KEY).json()["status"] != "COMPLETED":
        pass
    result = client.get(submitted.json()["response_url"], headers=KEY)
    assert result.status_code == 200 and result.headers[HEADER] == "12"  # veo3 i2v: $0.75 / $0.50 x 8 s
    run = client.post(f"/run/{ENDPOINT}", json={**SEED_REQUESTS[ENDPOINT], "generate_audio": False}, headers=KEY)
    assert run.status_code == 200 and run.headers[HEADER] == "8"


def test_a_validation_422_bills_zero_and_a_model_error_bills_nothing(client: TestClient) -> None:
    invalid = client.post(f"/{ENDPOINT}", json={"prompt": "no image"}, headers=KEY).json()  # accepted, as on fal
    while client.get(invalid["status_url"], headers=KEY).json()["status"] != "COMPLETED":
        pass
    refused = client.get(invalid["response_url"], headers=KEY)  # the runner's 422
    assert refused.status_code == 422 and refused.headers[HEADER] == "0"
    malformed = client.post(f"/{ENDPOINT}", content=b"{", headers={**KEY, "Content-Type": "application/json"})
    assert malformed.status_code == 422 and malformed.headers[HEADER] == "0"
    headers = {**KEY, "X-Fal-Emulator-Scenario": "content_policy_violation,instant"}
    failed = client.post(f"/{ENDPOINT}", json=SEED_REQUESTS[ENDPOINT], headers=headers).json()
    result = client.get(failed["response_url"], headers=KEY)
    assert result.status_code == 422 and HEADER not in result.headers
