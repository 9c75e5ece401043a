"""`fal-emulator contracts ...`: check an endpoint (this emulator, real fal, a reseller) against the contracts.

    fal-emulator contracts run                                   # the emulator, in-process
    fal-emulator contracts run --base-url https://127.0.0.1:8471 --ca-bundle ~/.local/state/fal-emulator/bundle.pem
    fal-emulator contracts run --base-url https://queue.fal.run --key "$FAL_KEY"          # no video generated
    fal-emulator contracts run --base-url https://api.reseller.example --key "Bearer $TOKEN"
    fal-emulator contracts run --cassette veo.har                # a recording of fal, offline
    fal-emulator contracts rules                                 # what each rule means

Exit status: 0 when every rule held, 1 on any violation (or a suite that could not run), 2 for bad options
or an unreachable target.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from fal_emulator.contracts.profiles import PROFILES
from fal_emulator.contracts.rules import RULES

SUITES = ("openapi", "lifecycle", "media")  # as fal_emulator.contracts.runner.SUITES, which imports Schemathesis

RUN_EPILOG = """\
targets:
  no --base-url     the emulator, built and served in this process (the default)
  an emulator       a running `fal-emulator serve` (it answers /_emulator/health): every check runs
  --cassette FILE   a recording of real traffic (`fal-emulator record`): every queue and schema rule is
                    applied to the recorded answers, offline
  anything else     real fal or a reseller: only checks that generate no video run, unless
                    --allow-spend USD lets the kit generate the cheapest videos it can (shortest
                    duration, 720p, no audio, the cheapest endpoint), within that budget.
                    WARNING: real fal bills every second of generated video.

Reproduce a failure with the seed the summary prints: --seed N --profile P (same target options).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fal-emulator contracts", description="Check an endpoint against fal's contracts for the Veo models."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the contract suites against a target",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = run.add_mutually_exclusive_group()
    where.add_argument("--base-url", help="the queue host, e.g. https://queue.fal.run or https://127.0.0.1:8471")
    where.add_argument("--in-process", action="store_true", help="check the emulator in this process (default)")
    where.add_argument(
        "--cassette", metavar="FILE", help="check a recording (`fal-emulator record`) offline: nothing is sent"
    )
    run.add_argument(
        "--run-base-url",
        help="the synchronous host where it differs (default: https://fal.run, or {base}/run for an emulator)",
    )
    run.add_argument(
        "--key", help="a fal key, or a whole Authorization value such as 'Bearer TOKEN' (default: $FAL_KEY)"
    )
    run.add_argument(
        "--endpoint",
        action="append",
        default=[],
        dest="endpoints",
        metavar="ID",
        help="an endpoint id to check (repeatable; default: every endpoint in openapi/)",
    )
    run.add_argument(
        "--suite", action="append", choices=SUITES, dest="suites", help="run only this suite (repeatable; default: all)"
    )
    run.add_argument(
        "--profile",
        "--hypothesis-profile",
        default="default",
        dest="profile",
        help=f"how much to generate: {', '.join(PROFILES)} (default: default)",
    )
    run.add_argument("--max-examples", type=int, help="generated cases per operation and phase (overrides the profile)")
    run.add_argument("--seed", type=int, help="the seed to reproduce a run (default: a random one, printed)")
    run.add_argument("--junit-xml", type=Path, help="also write the report as JUnit XML here")
    run.add_argument("--ca-bundle", help="a CA bundle to trust for HTTPS (default: $SSL_CERT_FILE, else the system's)")
    run.add_argument(
        "--allow-spend",
        type=float,
        metavar="USD",
        help="let checks that generate video run against a remote target, within this budget",
    )
    run.add_argument("--quiet", action="store_true", help="print only the summary")
    commands.add_parser("rules", help="list the rules the kit checks")
    diff = commands.add_parser(
        "diff",
        help="compare our openapi/ documents with fal's published per-endpoint OpenAPI",
        description="Print how our document of each endpoint differs from fal's: fields, types, nullable, enums, "
        "defaults, required and bounds of the input and output schemas. Exit 0: no drift; 1: drift.",
    )
    diff.add_argument(
        "--openapi",
        action="append",
        required=True,
        metavar="FILE_OR_URL",
        help="fal's document of one endpoint, e.g. "
        "https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=fal-ai/veo3.1/fast (repeatable)",
    )
    return parser


def _diff(sources: list[str]) -> int:
    from fal_emulator.catalog import load_catalog
    from fal_emulator.contracts.drift import DriftSourceError, compare, load_document, render, their_endpoint

    catalog = load_catalog()
    drifted = False
    for source in sources:
        try:
            theirs = their_endpoint(load_document(source), source)
        except DriftSourceError as exc:
            print(f"fal-emulator contracts diff: {exc}", file=sys.stderr)
            return 2
        ours = catalog.get(theirs.endpoint_id)
        if ours is None:
            print(f"{theirs.endpoint_id}: not in openapi/ (fal documents an endpoint we do not serve)")
            drifted = True
            continue
        drift = compare(ours, theirs)
        drifted |= bool(drift)
        print(render(ours.endpoint_id, source, drift))
    return 1 if drifted else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run `fal-emulator contracts`; returns the exit status (see the module docstring)."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if args.command == "rules":
        for name, text in RULES.items():
            print(f"{name:<36} {text}")
        return 0
    if args.command == "diff":
        return _diff(args.openapi)
    try:
        import httpx

        from fal_emulator.contracts.junit import write_junit_xml
        from fal_emulator.contracts.runner import KitOptions, KitUsageError, run_contracts
    except ImportError as exc:
        from fal_emulator.cli import contracts_requirement

        print(
            f"fal-emulator contracts: {exc}; install the kit with: pip install {shlex.join(contracts_requirement())}",
            file=sys.stderr,
        )
        return 2
    if args.allow_spend is not None and args.allow_spend < 0:
        print("fal-emulator contracts: --allow-spend must be >= 0", file=sys.stderr)
        return 2
    options = KitOptions(
        base_url=args.base_url,
        run_base_url=args.run_base_url,
        key=args.key,
        endpoints=tuple(args.endpoints),
        profile=args.profile,
        max_examples=args.max_examples,
        seed=args.seed,
        ca_bundle=args.ca_bundle,
        allow_spend=args.allow_spend,
        suites=tuple(args.suites) if args.suites else SUITES,
        cassette=args.cassette,
    )

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    try:
        report = run_contracts(options, log=log)
    except KitUsageError as exc:
        print(f"fal-emulator contracts: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"fal-emulator contracts: cannot reach {args.base_url}: {exc!r}", file=sys.stderr)
        return 2
    print(report.summary())
    if args.junit_xml:
        write_junit_xml(report, args.junit_xml)
    return 0 if report.ok else 1
