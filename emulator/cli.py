"""`fal-emulator serve` runs the emulator; `fal-emulator env` prints the exports for fal_client."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from fal_emulator import __version__
from fal_emulator.catalog import Catalog, Endpoint, load_catalog
from fal_emulator.failures import FAILURES
from fal_emulator.queue import PRESETS
from fal_emulator.settings import Settings

DEFAULT_KEY = "fal-emulator-key"

SERVE_EPILOG = """\
timing:
  By default a request spends 0.5 s IN_QUEUE and 1.5 s IN_PROGRESS (runner logs appear while it
  runs), so one fal_client.subscribe sees every state and finishes in about 2 s.
  --instant          complete every request at once (same as --policy instant)
  --realistic        Veo-like timing: 5 s queued, then 20 s + 10 s per second of video
  --policy P         default | instant | realistic | manual | polls:N | timed:QUEUE_S,RUN_S
  --time-scale X     virtual seconds per real second, e.g. --realistic --time-scale 20

Every flag has an environment variable: FAL_EMULATOR_<FLAG> (e.g. FAL_EMULATOR_HTTPS_PORT=9443).
Then, in the shell that runs your app:  eval "$(fal-emulator env)"
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fal-emulator", description="An offline emulator of fal.ai's Veo queue API.")
    parser.add_argument("--version", action="version", version=f"fal-emulator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve the emulator on HTTP and HTTPS",
        description="Serve fal's queue API (and the sync API under /run/) on an HTTP and an HTTPS port.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="plain HTTP port (default 8470; 0 = any free port)")
    serve.add_argument("--https-port", type=int, help="HTTPS port for fal_client (default 8471; 0 = any free port)")
    serve.add_argument(
        "--state-dir",
        type=Path,
        help="where the throwaway CA, the trust bundle and server.json live (default $XDG_STATE_HOME/fal-emulator)",
    )
    timing = serve.add_mutually_exclusive_group()
    timing.add_argument("--policy", help=f"progression policy: {', '.join(PRESETS)}, polls:N or timed:Q,R")
    timing.add_argument("--instant", action="store_const", const="instant", dest="policy", help="complete at once")
    timing.add_argument("--realistic", action="store_const", const="realistic", dest="policy", help="Veo-like timing")
    serve.add_argument("--time-scale", type=float, help="virtual seconds per real second (default 1.0)")
    serve.add_argument("--seed", type=int, help="seed for request ids (default: random)")
    serve.add_argument(
        "--store", choices=["memory", "sqlite"], help="where requests live (default memory; sqlite survives restarts)"
    )
    serve.add_argument("--key", action="append", dest="keys", help="accept only this key (repeatable)")
    serve.add_argument("--public-url", help="base URL put in status_url/response_url/file urls (default: as reached)")
    serve.add_argument(
        "--prompt-scenarios", action="store_const", const=True, help="read [[fal-emulator:TOKENS]] in prompts"
    )
    serve.add_argument("--control-token", help="token the control plane requires (generated beyond loopback)")
    serve.add_argument("--webhook-allow", action="append", help="a host webhooks may be sent to (repeatable)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])

    env = commands.add_parser("env", help="print the export lines that point fal_client at the emulator")
    env.add_argument("--state-dir", type=Path, help="the state directory of the running emulator")

    commands.add_parser("endpoints", help="print the endpoints the emulator serves, as a Markdown table")
    commands.add_parser("errors", help="print every fal error the emulator can produce, as a Markdown table")

    contracts = commands.add_parser(
        "contracts",
        help="check an endpoint (this emulator, real fal, a reseller) against the contracts",
        add_help=False,
    )
    contracts.add_argument("contract_args", nargs=argparse.REMAINDER)
    return parser


def endpoints_table(catalog: Catalog) -> str:
    """A Markdown table of the catalogue: endpoint id, app id, required inputs and output choices."""

    def choices(endpoint: Endpoint, name: str, absent: str) -> str:
        values = endpoint.enum(name)
        return ", ".join(f"`{value}`" for value in values) if values else absent

    rows = [
        "| endpoint id | app id | required inputs | aspect_ratio | resolution | duration | audio |",
        "|---|---|---|---|---|---|---|",
    ]
    for endpoint in catalog:
        required = ", ".join(f"`{name}`" for name in endpoint.input_schema.get("required", []))
        audio = "`generate_audio`" if "generate_audio" in endpoint.properties else "never"
        rows.append(
            f"| `{endpoint.endpoint_id}` | `{endpoint.app_id}` | {required} | {choices(endpoint, 'aspect_ratio', '–')} "
            f"| {choices(endpoint, 'resolution', '`720p` (fixed)')} | {choices(endpoint, 'duration', '–')} | {audio} |"
        )
    return "\n".join(rows)


def errors_table() -> str:
    """A Markdown table of fal's documented errors: scenario name, HTTP status, body, retryable."""
    rows = [
        "| scenario / `error_type` | HTTP | family | body | `X-Fal-Retryable` |",
        "|---|---|---|---|---|",
    ]
    for failure in FAILURES.values():
        if failure.family == "model":
            ctx = f", ctx `{json.dumps(dict(failure.ctx))}`" if failure.ctx else ""
            body = f"`detail[0]`: loc `{json.dumps(list(failure.loc))}`{ctx}"
            retryable = "true" if failure.retryable else "false"
        else:
            body = f"`{json.dumps({'detail': failure.message, 'error_type': failure.name})}`"
            retryable = "–"
        rows.append(f"| `{failure.name}` | {failure.status_code} | {failure.family} | {body} | {retryable} |")
    return "\n".join(rows)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        name: getattr(args, name, None)
        for name in (
            "host", "http_port", "https_port", "state_dir", "policy", "time_scale", "seed", "public_url",
            "prompt_scenarios", "control_token", "store",
        )
    }  # fmt: skip
    keys, allow = getattr(args, "keys", None), getattr(args, "webhook_allow", None)
    return Settings.from_env(
        **overrides, keys=tuple(keys) if keys else None, webhook_allow=tuple(allow) if allow else None
    )


def env_lines(settings: Settings) -> list[str]:
    """The `export` lines for a shell, for the running emulator (or the configured ports if none runs)."""
    from fal_emulator.server import client_env, read_listening
    from fal_emulator.tls import ensure_tls

    listening = read_listening(settings.state_dir)
    key = settings.keys[0] if settings.keys else (listening.key if listening else None) or DEFAULT_KEY
    if listening:
        values = client_env(listening.host, listening.https_port, listening.bundle, key)
    else:
        bundle = str(ensure_tls(settings.state_dir, settings.host).bundle)
        values = client_env(settings.host, settings.https_port, bundle, key)
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "contracts":
        from fal_emulator.contracts.cli import main as contracts_main

        return contracts_main(args.contract_args)
    try:
        settings = _settings(args)
    except ValueError as exc:
        print(f"fal-emulator: {exc}", file=sys.stderr)
        return 2
    if args.command == "errors":
        print(errors_table())
        return 0
    if args.command == "endpoints":
        print(endpoints_table(load_catalog(settings.openapi_dir)))
        return 0
    if args.command == "env":
        print("\n".join(env_lines(settings)))
        return 0
    from fal_emulator.server import serve

    try:
        asyncio.run(serve(settings, log_level=args.log_level))
    except OSError as exc:
        print(f"fal-emulator: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
