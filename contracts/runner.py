"""One contract run: choose the target, the endpoints and the budget, run the suites, gather one Report.

    report = run_contracts(KitOptions())                                   # the emulator, in-process
    report = run_contracts(KitOptions(base_url="https://127.0.0.1:8471", ca_bundle=bundle))
    report = run_contracts(KitOptions(base_url="https://queue.fal.run", key=os.environ["FAL_KEY"],
                                      allow_spend=1.00))                   # real fal, at most $1
    report = run_contracts(KitOptions(cassette="veo.har"))                 # a recording, offline
    assert report.ok, report.summary()

Suites: `openapi` (Schemathesis, every phase), `lifecycle` (the Hypothesis machine), `media` (the run host and
the videos). In-process each suite gets a fresh emulator with the policy that suits it: `polls:1` for
Schemathesis (streams finish by themselves), `timed:1,2` on a frozen clock for the machine (it moves time),
`instant` for media.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fal_emulator.catalog import Endpoint
from fal_emulator.contracts.documents import cheapest_input, load_contracts
from fal_emulator.contracts.lifecycle import MAX_REQUESTS
from fal_emulator.contracts.lifecycle_suite import run_lifecycle_suite
from fal_emulator.contracts.media import run_media_suite
from fal_emulator.contracts.openapi_suite import run_openapi_suite
from fal_emulator.contracts.profiles import Profile, get_profile
from fal_emulator.contracts.report import Report, SuiteResult
from fal_emulator.contracts.spend import Budget, cheapest_endpoint, load_prices
from fal_emulator.contracts.target import (
    AppWrapper,
    InProcessEmulator,
    Target,
    authorization_header,
    ca_bundle,
    discover,
)

SUITES = ("openapi", "lifecycle", "media")
IN_PROCESS_POLICIES = {"openapi": "polls:1", "lifecycle": "timed:1,2", "media": "instant"}
DEFAULT_EMULATOR_KEY = "fal-contracts"


class KitUsageError(ValueError):
    """Options that cannot make a run (no key for a remote target, an unknown endpoint or suite, …)."""


@dataclass(frozen=True)
class KitOptions:
    """What to check and how hard.

    `base_url` None checks the emulator in-process. `key` is a fal key or a whole header value
    (`Bearer …` for a reseller); by default `FAL_KEY`. `endpoints` empty means every endpoint.
    `allow_spend` (USD) lets generating checks run against a remote target, within that budget.
    `wrap` (in-process only) wraps the emulator app before it is served: the kit's own tests break it.
    `cassette` checks a recording (`fal-emulator record`) instead of a live target: offline, nothing is sent.
    """

    base_url: str | None = None
    run_base_url: str | None = None
    key: str | None = None
    endpoints: tuple[str, ...] = ()
    profile: str = "default"
    max_examples: int | None = None
    seed: int | None = None
    ca_bundle: str | None = None
    allow_spend: float | None = None
    suites: tuple[str, ...] = SUITES
    wrap: AppWrapper | None = None
    cassette: str | None = None


def run_contracts(options: KitOptions, *, log: Callable[[str], Any] = lambda line: None) -> Report:
    """Run the selected suites; `log` gets progress lines. Raises KitUsageError for unusable options and
    httpx.HTTPError when a remote target cannot be reached."""
    unknown = set(options.suites) - set(SUITES)
    if unknown:
        raise KitUsageError(f"unknown suite(s) {', '.join(sorted(unknown))}; use {', '.join(SUITES)}")
    try:
        endpoints = load_contracts(options.endpoints)
        profile = get_profile(options.profile).with_max_examples(options.max_examples)
    except (KeyError, ValueError) as exc:
        raise KitUsageError(str(exc).strip("'\"")) from None
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**31)
    if options.cassette is not None:
        return _run_cassette(options.cassette, endpoints, profile, seed, log)
    if options.base_url is None:
        return _run_in_process(options, endpoints, profile, seed, log)
    return _run_against(options, endpoints, profile, seed, log)


def _run_cassette(
    cassette: str, endpoints: list[Endpoint], profile: Profile, seed: int, log: Callable[[str], Any]
) -> Report:
    from fal_emulator.cassette import CassetteError
    from fal_emulator.contracts.recording import run_cassette_suite

    path = Path(cassette).expanduser()
    log(f"cassette: every rule on the recorded traffic in {path} (offline)")
    report = Report(f"{path} (cassette)", seed, profile.name, [e.endpoint_id for e in endpoints])
    try:
        report.suites.append(run_cassette_suite(path, endpoints))
    except CassetteError as exc:
        raise KitUsageError(str(exc)) from None
    return report


def _run_in_process(
    options: KitOptions, endpoints: list[Endpoint], profile: Profile, seed: int, log: Callable[[str], Any]
) -> Report:
    report = Report("the emulator, in-process", seed, profile.name, [e.endpoint_id for e in endpoints])
    for suite in (name for name in SUITES if name in options.suites):
        policy = IN_PROCESS_POLICIES[suite]
        frozen = suite == "lifecycle"
        with InProcessEmulator(policy=policy, seed=seed, wrap=options.wrap, frozen=frozen) as target:
            log(f"{suite}: {len(endpoints)} endpoint(s) on {target.base_url} (policy {policy})")
            report.suites.append(_run_suite(suite, endpoints, target, profile, seed, None))
    return report


def _run_against(
    options: KitOptions, endpoints: list[Endpoint], profile: Profile, seed: int, log: Callable[[str], Any]
) -> Report:
    assert options.base_url is not None
    key = options.key or os.environ.get("FAL_KEY")
    verify = ca_bundle(options.ca_bundle)
    target = discover(options.base_url, options.run_base_url, authorization_header(key or DEFAULT_EMULATOR_KEY), verify)
    report = Report(target.label, seed, profile.name, [e.endpoint_id for e in endpoints])
    budget: Budget | None = None
    generating = endpoints
    if not target.is_emulator:
        if not key:
            raise KitUsageError("a remote target needs a key: --key KEY (or 'Bearer TOKEN'), or FAL_KEY")
        budget, generating, notes = _spending_plan(options, endpoints)
        report.notes += notes
        for note in notes:
            log(note)
    for suite in (name for name in SUITES if name in options.suites):
        log(f"{suite}: {len(endpoints)} endpoint(s) on {target.label}")
        chosen = endpoints if suite == "openapi" else generating
        report.suites.append(_run_suite(suite, chosen, target, profile, seed, budget))
    if budget is not None and budget.charges:
        report.notes.append(
            f"estimated spend: ${budget.spent:.2f} of ${budget.limit:.2f} ({len(budget.charges)} videos)"
        )
    return report


def _spending_plan(options: KitOptions, endpoints: list[Endpoint]) -> tuple[Budget, list[Endpoint], list[str]]:
    """The budget, the endpoints generating checks may use, and what to tell the user about it."""
    prices = load_prices()
    limit = options.allow_spend or 0.0
    if limit <= 0:
        notes = [
            "remote target: running only checks that generate no video (validation rejections, unknown ids, "
            "cancels of unknown ids, schemas and headers); pass --allow-spend USD to generate"
        ]
        return Budget(0.0, prices), endpoints, notes
    generating = endpoints if options.endpoints else [cheapest_endpoint(endpoints, prices)]
    notes = []
    for endpoint in generating:
        cost = prices.cost(endpoint, cheapest_input(endpoint))
        estimate = "" if endpoint.endpoint_id in prices.verified else " (an upper bound: fal's rate is not on file)"
        notes.append(
            f"WARNING: real fal bills these checks. {endpoint.endpoint_id}, {cheapest_input(endpoint)}: about "
            f"${cost:.2f} a video{estimate}; at most {1 + MAX_REQUESTS} videos (${cost * (1 + MAX_REQUESTS):.2f}), "
            f"never past --allow-spend ${limit:.2f}"
        )
    return Budget(limit, prices), generating, notes


def _run_suite(
    name: str, endpoints: list[Endpoint], target: Target, profile: Profile, seed: int, budget: Budget | None
) -> SuiteResult:
    if name == "openapi":
        return run_openapi_suite(endpoints, target, profile, seed)
    if name == "media":
        return run_media_suite(endpoints, target, profile, budget=budget)
    result, context = run_lifecycle_suite(endpoints, target, profile, seed, budget=budget)
    result.skipped += context.notes
    result.warnings += context.warnings
    return result
