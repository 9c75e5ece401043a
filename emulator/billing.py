"""What a request bills: the `x-fal-billable-units` header of its result, from the price file.

fal bills Veo per second of generated video, at a rate that depends on the endpoint, the resolution and
audio (https://fal.ai/docs/documentation/model-apis/pricing; each model's page). The result carries the
billed quantity in `x-fal-billable-units`, "denominated in the priced unit": cost = units x the endpoint's
unit price (`GET api.fal.ai/v1/models/pricing` gives one `unit_price` per endpoint).

One unit here is one second of silent video at the endpoint's standard rate (the `"*"` `silent` rate in
`contracts/prices.yaml`, the one file that holds prices), so units x that rate is the cost the price file
gives: an 8 s 720p `fal-ai/veo3.1` video with audio ($0.40/s against $0.20/s) is 16 units; without audio, 8.
A request whose input fails validation bills 0 (`fal_emulator.errors.RequestValidationError`); other
errors bill nothing and carry no header.

    prices = load_price_list()
    prices.units("fal-ai/veo3.1", resolution="720p", audio=True, seconds=8)   # 16.0
    header_value(16.0)                                                          # "16"
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import yaml

from fal_emulator.errors import BILLABLE_UNITS_HEADER
from fal_emulator.paths import PRICES_FILE

STANDARD = "*"  # the rate for every resolution the file does not list


@dataclass(frozen=True)
class PriceList:
    """USD per second of video by endpoint id, then resolution (`*`: the others), then `silent` / `audio`."""

    rates: Mapping[str, Mapping[str, Mapping[str, float]]]

    def unit_price(self, endpoint_id: str) -> float | None:
        """USD per unit: a second of silent video at the standard rate; None for an endpoint without a price."""
        rates = self.rates.get(endpoint_id)
        return None if rates is None else float(rates[STANDARD]["silent"])

    def units(self, endpoint_id: str, *, resolution: str, audio: bool, seconds: float) -> float | None:
        """The billable units of `seconds` of video; None when `endpoint_id` has no price."""
        unit = self.unit_price(endpoint_id)
        if unit is None or unit <= 0:
            return None
        rates = self.rates[endpoint_id]
        rate = float((rates.get(resolution) or rates[STANDARD])["audio" if audio else "silent"])
        return round(seconds * rate / unit, 4)


def load_price_list(path: Path = PRICES_FILE) -> PriceList:
    """Read the price file. Raises OSError, yaml.YAMLError or KeyError for a missing or malformed file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return PriceList({endpoint_id: entry["per_second"] for endpoint_id, entry in data["endpoints"].items()})


def header_value(units: float) -> str:
    """`x-fal-billable-units` as a number: `16`, `12.5`."""
    return f"{units:g}"


@functools.lru_cache(maxsize=1024)
def units_headers(units: float | None) -> Mapping[str, str]:
    """A success result's headers: `{"x-fal-billable-units": header_value(units)}`, none for None. One shared,
    read-only mapping per value, so that the outcomes of a full queue hold one copy."""
    return MappingProxyType({} if units is None else {BILLABLE_UNITS_HEADER: header_value(units)})
