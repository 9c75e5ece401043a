"""Real fal bills every second of video. This module estimates what a request costs (from the one price file,
`contracts/prices.yaml`) and refuses to go past the budget the user allowed (`--allow-spend USD`).

    prices = load_prices()
    prices.cost(endpoint, {"duration": "4s", "resolution": "720p", "generate_audio": False})   # 0.4 (USD)
    budget = Budget(1.00, prices)
    budget.charge(endpoint, arguments)      # adds the cost; raises BudgetExceeded past 1.00
    cheapest_endpoint(endpoints, prices)    # the endpoint whose cheapest input costs least
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fal_emulator.catalog import Endpoint
from fal_emulator.contracts.documents import cheapest_input, expected_video

PRICES_FILE = Path(__file__).resolve().parent / "prices.yaml"


class BudgetExceeded(RuntimeError):
    """A charge would take the run past the budget the user allowed; nothing was submitted."""


class UnknownPrice(LookupError):
    """The price file has no rate for an endpoint: the kit will not submit to it on a paid target."""


@dataclass(frozen=True)
class PriceTable:
    """USD per second of video by endpoint id, then resolution (`*` for the others), then `silent`/`audio`."""

    rates: Mapping[str, Mapping[str, Mapping[str, float]]]
    verified: frozenset[str] = frozenset()

    def per_second(self, endpoint_id: str, resolution: str, audio: bool) -> float:
        """Raises UnknownPrice when `endpoint_id` has no rate."""
        try:
            by_resolution = self.rates[endpoint_id]
        except KeyError:
            raise UnknownPrice(f"no price for {endpoint_id} in {PRICES_FILE.name}") from None
        rate = by_resolution.get(resolution) or by_resolution["*"]
        return float(rate["audio" if audio else "silent"])

    def cost(self, endpoint: Endpoint, arguments: Mapping[str, Any]) -> float:
        """The estimated USD cost of one request of `arguments` to `endpoint` (defaults filled in)."""
        video = expected_video(endpoint, arguments)
        resolution = str(arguments.get("resolution") or endpoint.default("resolution") or "720p")
        return round(self.per_second(endpoint.endpoint_id, resolution, video.audio) * video.seconds, 4)


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """Read the price file. Raises OSError, yaml.YAMLError or KeyError for a missing or malformed file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    endpoints = data["endpoints"]
    rates = {endpoint_id: entry["per_second"] for endpoint_id, entry in endpoints.items()}
    verified = frozenset(endpoint_id for endpoint_id, entry in endpoints.items() if entry.get("verified"))
    return PriceTable(rates, verified)


def cheapest_endpoint(endpoints: Sequence[Endpoint], prices: PriceTable) -> Endpoint:
    """The endpoint whose cheapest input costs least (ties: fewer required inputs, then the id).

    Raises UnknownPrice when none of them has a price.
    """
    priced = []
    for endpoint in endpoints:
        try:
            cost = prices.cost(endpoint, cheapest_input(endpoint))
        except UnknownPrice:
            continue
        priced.append((cost, len(endpoint.input_schema.get("required", [])), endpoint.endpoint_id, endpoint))
    if not priced:
        raise UnknownPrice("none of the selected endpoints has a price")
    return min(priced, key=lambda item: item[:3])[3]


@dataclass
class Budget:
    """At most `limit` USD; `charges` lists (endpoint id, USD) of every request allowed so far."""

    limit: float
    prices: PriceTable
    spent: float = 0.0
    charges: list[tuple[str, float]] = field(default_factory=list)

    def can_afford(self, endpoint: Endpoint, arguments: Mapping[str, Any]) -> bool:
        try:
            return self.spent + self.prices.cost(endpoint, arguments) <= self.limit + 1e-9
        except UnknownPrice:
            return False

    def charge(self, endpoint: Endpoint, arguments: Mapping[str, Any]) -> float:
        """Record one request's estimated cost. Raises BudgetExceeded (or UnknownPrice) and records nothing
        when it does not fit."""
        cost = self.prices.cost(endpoint, arguments)
        if self.spent + cost > self.limit + 1e-9:
            raise BudgetExceeded(
                f"{endpoint.endpoint_id} costs an estimated ${cost:.2f}; ${self.spent:.2f} of ${self.limit:.2f} "
                "is already spent"
            )
        self.spent = round(self.spent + cost, 4)
        self.charges.append((endpoint.endpoint_id, cost))
        return cost
