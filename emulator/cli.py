"""`fal-emulator serve` runs the emulator; `fal-emulator env [--proxy]` prints the exports for its clients."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shlex
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from fal_emulator import __version__
from fal_emulator.catalog import Catalog, Endpoint, load_catalog
from fal_emulator.failures import FAILURES
from fal_emulator.queue import PRESETS
from fal_emulator.record import add_record_command, record
from fal_emulator.settings import Settings

SERVE_EPILOG = """\
timing:
  By default a request spends 0.5 s IN_QUEUE and 1.5 s IN_PROGRESS (runner logs appear while it
  runs), so one fal_client.subscribe sees every state and finishes in about 2 s.
  --instant          complete every request at once (same as --policy instant)
  --realistic        Veo-like timing: 5 s queued, then 20 s + 10 s per second of video
  --policy P         default | instant | realistic | manual | polls:N | timed:QUEUE_S,RUN_S
  --time-scale X     virtual seconds per real second, e.g. --realistic --time-scale 20

Every flag has an environment variable: FAL_EMULATOR_<FLAG> (e.g. FAL_EMULATOR_HTTPS_PORT=9443).
Once it is ready it prints the absolute `eval "$(... env --proxy)"` line for the shell that runs your app.
"""

ENV_DESCRIPTION = """\
Print the shell lines that point unmodified clients at the running emulator (its server.json, checked by a
call to its health endpoint; with no server running this says so and exits 1). Use as:
  eval "$(fal-emulator env --proxy)"   HTTPS_PROXY: clients keep fal's own hostnames (any fal_client release,
                                       uploads too); the proxy refuses every other host with 403
  eval "$(fal-emulator env)"           FAL_QUEUE_RUN_HOST / FAL_RUN_HOST (fal_client 0.13 and later)
Both export FAL_KEY and the CA variables: SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, NODE_EXTRA_CA_CERTS.
"""
CONTRACTS_EXTRA = "fal-emulator[contracts]"


def contracts_requirement() -> list[str]:
    """What `pip install` takes to add the kit's extra, as arguments: the source this package was installed
    from (PEP 610's `direct_url.json`: a clone's path, `-e` first for an editable install; a git URL), else
    `fal-emulator[contracts]` (an index)."""
    try:
        text = importlib.metadata.distribution("fal-emulator").read_text("direct_url.json")
        source = json.loads(text) if text else {}
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return [CONTRACTS_EXTRA]
    url = str(source.get("url", ""))
    if url.startswith("file://"):
        path = f"{urllib.parse.unquote(urllib.parse.urlsplit(url).path)}[contracts]"
        editable = isinstance(source.get("dir_info"), dict) and source["dir_info"].get("editable") is True
        return ["-e", path] if editable else [path]
    vcs = source.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs"):
        return [f"{CONTRACTS_EXTRA} @ {vcs['vcs']}+{url}"]
    return [CONTRACTS_EXTRA]


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
        "--proxy-port", type=int, help="HTTPS proxy for fal's own hostnames (default 8472; 0 = any free port)"
    )
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
        "--store",
        choices=["memory", "sqlite", "redis"],
        help="where requests live (default memory; sqlite survives restarts; redis is shared by hosts)",
    )
    serve.add_argument("--redis-url", help="the redis store's server (default redis://127.0.0.1:6379/0)")
    serve.add_argument(
        "--render", choices=["on", "off"], help="render output MP4s from a readable input image (default on)"
    )
    serve.add_argument("--render-cache-mb", type=int, help="disk space for rendered MP4s, LRU (default 512)")
    serve.add_argument(
        "--concurrency", type=int, help="runners of the account: requests IN_PROGRESS at once (default: no limit)"
    )
    serve.add_argument(
        "--retention", help="how long results are kept: fal (default: 1 h, 6 min if >= 10 KB), forever, or seconds"
    )
    serve.add_argument(
        "--validate-at",
        choices=["runner", "submit"],
        help="where inputs are validated: runner (default, as fal: 200, then a 422 result) or submit (422 at once)",
    )
    serve.add_argument("--key", action="append", dest="keys", help="accept only this key (repeatable)")
    serve.add_argument("--public-url", help="base URL put in status_url/response_url/file urls (default: as reached)")
    serve.add_argument(
        "--prompt-scenarios", action="store_const", const=True, help="read [[fal-emulator:TOKENS]] in prompts"
    )
    serve.add_argument("--control-token", help="token the control plane requires (generated beyond loopback)")
    serve.add_argument("--webhook-allow", action="append", help="a host webhooks may be sent to (repeatable)")
    serve.add_argument("--max-body-bytes", type=int, help="largest request body, bytes (default 40 MiB; beyond: 413)")
    serve.add_argument(
        "--read-timeout", type=float, help="seconds a request head may take and a body may stall (default 30)"
    )
    serve.add_argument("--max-connections", type=int, help="open connections per listener (default 2048; then 503)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--replay", type=Path, metavar="CASSETTE", help="play back a recorded cassette (HAR)")
    serve.add_argument("--replay-match", choices=["input", "endpoint"], help="input (default) or endpoint")
    serve.add_argument("--replay-strict", action="store_const", const=True, help="404 for an unmatched submit")
    add_record_command(commands)

    env = commands.add_parser(
        "env",
        help="print the export lines that point fal's clients at the running emulator",
        description=ENV_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env.add_argument("--state-dir", type=Path, help="the state directory of the running emulator")
    env.add_argument("--proxy", action="store_true", help="export HTTPS_PROXY (fal's own hostnames) instead of hosts")

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
            "host", "http_port", "https_port", "proxy_port", "state_dir", "policy", "time_scale", "seed", "public_url",
            "prompt_scenarios", "control_token", "store", "redis_url", "render", "render_cache_mb",
            "replay", "replay_match", "replay_strict", "concurrency", "retention", "validate_at", "max_body_bytes",
            "read_timeout", "max_connections",
        )
    }  # fmt: skip
    keys, allow = getattr(args, "keys", None), getattr(args, "webhook_allow", None)
    return Settings.from_env(
        **overrides, keys=tuple(keys) if keys else None, webhook_allow=tuple(allow) if allow else None
    )


def env_command(settings: Settings, *, proxy: bool) -> int:
    """`fal-emulator env`: the exports on stdout; exit 1 with the reason on stderr when no server answers."""
    from fal_emulator.exports import NotRunning, env_lines, running_server

    try:
        lines = env_lines(
            running_server(settings.state_dir), key=settings.keys[0] if settings.keys else None, proxy=proxy
        )
    except NotRunning as exc:
        print(f"fal-emulator: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    if proxy:
        print(
            "fal-emulator: HTTPS_PROXY set: only fal's hosts pass; other HTTPS hosts get 403 in this shell",
            file=sys.stderr,
        )
    return 0


def contracts_command(args: Sequence[str]) -> int:
    """`fal-emulator contracts ...`, or the pip command to run when the kit's extra is not installed."""
    try:
        from fal_emulator.contracts.cli import main as contracts_main
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.startswith("fal_emulator"):
            raise
        print(
            f"fal-emulator: the contract kit needs the `contracts` extra ({exc.name} is not installed); run:\n"
            f"  {shlex.quote(sys.executable)} -m pip install {shlex.join(contracts_requirement())}",
            file=sys.stderr,
        )
        return 2
    return contracts_main(list(args))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "contracts":
        return contracts_command(args.contract_args)
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
        return env_command(settings, proxy=args.proxy)
    if args.command == "record":
        return record(args, settings)
    from fal_emulator.server import ListenError, StateDirError, run, serve

    try:
        run(serve(settings, log_level=args.log_level))
    except (ListenError, StateDirError) as exc:
        print(f"fal-emulator: {exc.strerror}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # ValueError: a cassette (--replay) that cannot be read
        print(f"fal-emulator: cannot serve: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
