"""What fal would have charged for a request: the contract kit's price file, read on its own.

The rates live in one file, `contracts/prices.yaml` (USD per second of video, by endpoint id, then
resolution with `*` for the others, then `silent` / `audio`; `verified` marks rates quoted from fal's
pages). The contract kit's package imports Schemathesis, an optional extra, so this module finds the file
next to that package without importing it, and reads it with PyYAML alone.

    prices = load_prices()
    prices.cost(endpoint, {"duration": "4s", "resolution": "720p", "generate_audio": False})  # 0.8 (USD)

Source of the rates: the file's own `source` entries (fal model pages, `llms.txt`).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fal_emulator.catalog import Endpoint
from fal_emulator.video import DEFAULT_RESOLUTION, clip_for

Rates = Mapping[str, Mapping[str, Mapping[str, float]]]


def prices_file() -> Path | None:
    """`prices.yaml` of the installed `fal_emulator.contracts` package (not imported), or None."""
    spec = importlib.util.find_spec("fal_emulator.contracts")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "prices.yaml"
        if path.is_file():
            return path
    return None


PRICE_FIELDS = ("resolution", "duration", "generate_audio")  # the inputs a price depends on
CACHE_SIZE = 4096


@dataclass(frozen=True)
class Prices:
    """USD per second of video; `verified` holds the endpoint ids whose rate fal publishes."""

    rates: Rates
    verified: frozenset[str] = frozenset()
    _costs: dict[tuple[Any, ...], float | None] = field(default_factory=dict, repr=False, compare=False)

    def per_second(self, endpoint_id: str, resolution: str, audio: bool) -> float | None:
        """The rate in USD per second, or None when the file has none for `endpoint_id`."""
        by_resolution = self.rates.get(endpoint_id)
        if not by_resolution:
            return None
        rate = by_resolution.get(resolution) or by_resolution.get("*")
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


def parse_prices(data: Any) -> Prices:
    """The price table from the file's parsed YAML. Raises ValueError for a malformed one."""
    try:
        endpoints = data["endpoints"]
        rates = {str(endpoint_id): entry["per_second"] for endpoint_id, entry in endpoints.items()}
        verified = frozenset(str(endpoint_id) for endpoint_id, entry in endpoints.items() if entry.get("verified"))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed price file: {exc!r}") from None
    return Prices(rates, verified)


@functools.cache
def load_prices(path: Path | None = None) -> Prices:
    """The price table (cached). No file, or an unreadable one, gives an empty table: every price is None."""
    path = path or prices_file()
    if path is None:
        return Prices({})
    try:
        return parse_prices(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValueError):
        return Prices({})
