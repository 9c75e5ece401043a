"""What fal would have charged for a request's video, in USD: the price file's rate applied to its input.

The rates are the one price file's (`contracts/prices.yaml`: USD per second of video by endpoint id, then
resolution with `*` for the others, then `silent` / `audio`), read as data by `fal_emulator.billing`, so the
contract kit (whose package imports Schemathesis, an optional extra) is never imported.

    prices = load_prices()
    prices.cost(endpoint, {"duration": "4s", "resolution": "720p", "generate_audio": False})  # 0.8 for veo3.1

Source of the rates: the file's own `source` entries (fal model pages, `llms.txt`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from fal_emulator.billing import STANDARD, PriceList, load_price_list
from fal_emulator.catalog import Endpoint
from fal_emulator.summary import PRICED_INPUTS
from fal_emulator.video import DEFAULT_RESOLUTION, clip_for

PRICE_FIELDS = PRICED_INPUTS  # the inputs a price depends on (each request's summary keeps them)
CACHE_SIZE = 4096


@dataclass(frozen=True)
class Prices:
    """The price list, and the cost of a request's input under it (cached per endpoint and priced inputs)."""

    price_list: PriceList
    _costs: dict[tuple[Any, ...], float | None] = field(default_factory=dict, repr=False, compare=False)

    def per_second(self, endpoint_id: str, resolution: str, audio: bool) -> float | None:
        """The rate in USD per second, or None when the file has none for `endpoint_id`."""
        by_resolution = self.price_list.rates.get(endpoint_id)
        if not by_resolution:
            return None
        rate = by_resolution.get(resolution) or by_resolution.get(STANDARD)
        return None if rate is None else float(rate["audio" if audio else "silent"])

    def cost(self, endpoint: Endpoint, arguments: Mapping[str, Any]) -> float | None:
        """USD for one video of `arguments` from `endpoint` (its defaults filled in); None when the endpoint
        is unpriced or the input names no clip (an invalid input, which fal would refuse)."""
        key = (endpoint.endpoint_id, *(arguments.get(name) for name in PRICE_FIELDS))
        try:
            return self._costs[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: not a valid input
            return self._price(endpoint, arguments)
        if len(self._costs) >= CACHE_SIZE:
            self._costs.clear()
        price = self._costs[key] = self._price(endpoint, arguments)
        return price

    def _price(self, endpoint: Endpoint, arguments: Mapping[str, Any]) -> float | None:
        resolution = arguments.get("resolution", endpoint.default("resolution")) or DEFAULT_RESOLUTION
        try:
            spec = clip_for(endpoint, {name: arguments[name] for name in PRICE_FIELDS if name in arguments}, None)
        except (KeyError, ValueError, TypeError, AttributeError):
            return None
        rate = self.per_second(endpoint.endpoint_id, str(resolution), spec.audio)
        return None if rate is None else round(rate * spec.duration, 4)


@functools.cache
def load_prices() -> Prices:
    """The price table (read once). A missing or malformed file gives an empty one: every price is None."""
    try:
        return Prices(load_price_list())
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return Prices(PriceList({}))
