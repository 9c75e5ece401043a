"""`fal-emulator record --upstream URL --cassette FILE --allow-spend USD`: the command around the recording proxy
(`fal_emulator.http.recorder`): it checks the key and the budget, then serves like `fal-emulator serve`.

    FAL_KEY=... fal-emulator record --cassette veo.har --allow-spend 2.00          # real fal
    fal-emulator record --upstream http://127.0.0.1:9470 --cassette veo.har --allow-spend 1   # another server

Costs are estimated from the contract kit's price file (`contracts/prices.yaml`, read by
`fal_emulator.contracts.spend`); a submit whose estimate would pass `--allow-spend` is refused (402) before it
reaches fal. The key comes only from the environment (`FAL_KEY`, or `FAL_KEY_ID` + `FAL_KEY_SECRET`), never from a
flag that would land in shell history, and is never written: not in the cassette, not in `server.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from fal_emulator.cassette import CassetteError, CassetteWriter
from fal_emulator.catalog import load_catalog
from fal_emulator.settings import Settings

RECORD_EPILOG = """\
Recording real fal spends money: every submit is priced from contracts/prices.yaml first and refused (402)
once --allow-spend USD would be passed. The key upstream gets is $FAL_KEY of this process; point your app at
the recorder as at `serve` (eval "$(fal-emulator env)"), then replay with: fal-emulator serve --replay FILE
"""


def add_record_command(commands: Any) -> None:
    """Add `record` to the CLI's subcommands (argparse's subparsers action)."""
    record = commands.add_parser(
        "record",
        help="serve like `serve`, but forward every call to fal and record it into a cassette (HAR)",
        description="Forward every fal call to the upstream (real fal by default, with $FAL_KEY) and record each "
        "exchange with its timing into one HAR 1.2 cassette; output media are stored beside it.",
        epilog=RECORD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("--upstream", metavar="URL", help="the queue host to record (default https://queue.fal.run)")
    record.add_argument("--cassette", required=True, type=Path, metavar="FILE", help="the cassette to write")
    record.add_argument("--allow-spend", type=float, metavar="USD", help="required: the most recording may cost")
    record.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    record.add_argument("--http-port", type=int, help="plain HTTP port (default 8470; 0 = any free port)")
    record.add_argument("--https-port", type=int, help="HTTPS port for fal_client (default 8471; 0 = any free port)")
    record.add_argument("--state-dir", type=Path, help="where the CA, the trust bundle and server.json live")
    record.add_argument("--public-url", help="this server's URL as upstream can reach it (to record webhooks)")
    record.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def price_of(settings: Settings) -> Any:
    """USD for one request, from the kit's price file: (endpoint id, input) -> float; raises LookupError."""
    from fal_emulator.contracts.spend import load_prices

    catalog, prices = load_catalog(settings.openapi_dir), load_prices()

    def cost(endpoint_id: str, arguments: Any) -> float:
        endpoint = catalog.get(endpoint_id)
        if endpoint is None:
            raise LookupError(f"{endpoint_id} is not an endpoint in openapi/, so its price is unknown")
        return prices.cost(endpoint, arguments)

    return cost


def record(args: argparse.Namespace, settings: Settings, environ: dict[str, str] | None = None) -> int:
    """Run the recorder until interrupted; returns the exit status (2 for unusable options)."""
    from fal_emulator.http.recorder import create_recorder_app
    from fal_emulator.http.recorder_backend import Recorder, SpendGuard, Upstream, default_key
    from fal_emulator.server import read_listening, serve

    env = dict(os.environ if environ is None else environ)
    if args.allow_spend is None:
        print(
            "fal-emulator record: recording real fal spends money; say how much with --allow-spend USD "
            "(estimated from contracts/prices.yaml; submits past it are refused)",
            file=sys.stderr,
        )
        return 2
    if args.allow_spend < 0:
        print("fal-emulator record: --allow-spend must be >= 0", file=sys.stderr)
        return 2
    key = default_key(env)
    if key is None:
        print("fal-emulator record: set FAL_KEY (your fal key) in this process's environment", file=sys.stderr)
        return 2
    upstream = Upstream.of(args.upstream)
    try:
        hosts, limit = upstream.as_dict(), args.allow_spend
        cassette = CassetteWriter(args.cassette, upstream=hosts, secrets=[key], budget_usd=limit)
        cassette.save()
    except (OSError, CassetteError) as exc:
        print(f"fal-emulator record: cannot write {args.cassette}: {exc}", file=sys.stderr)
        return 2

    def http_base() -> str | None:
        listening = read_listening(settings.state_dir)
        return listening.http_url if listening else None

    recorder = Recorder(upstream, cassette, key, SpendGuard(args.allow_spend, price_of(settings)),
                        public_url=settings.public_url, http_base=http_base)  # fmt: skip
    print(
        f"fal-emulator record: forwarding to {upstream.queue}, recording into {args.cassette} "
        f"(at most ${args.allow_spend:.2f} of estimated spend)",
        file=sys.stderr,
    )
    try:
        asyncio.run(serve(settings, log_level=args.log_level, app=create_recorder_app(recorder)))
    except OSError as exc:
        print(f"fal-emulator record: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0
