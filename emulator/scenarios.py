"""Scenarios: what one request should meet instead of a plain success.

A scenario is a comma-separated list of tokens, given per request in the `X-Fal-Emulator-Scenario`
header, queued per endpoint through the control plane (FIFO, like moto's static results), or, when
the `prompt_scenarios` setting is on, written in the prompt as `[[fal-emulator:TOKENS]]`:

    content_policy_violation          the request completes with that fal error (any name in FAILURES)
    runner_disconnected:N             its first N attempts fail with that 503/504 error and fal's queue retries
                                      them on another runner: up to QUEUE_ATTEMPTS attempts, one with
                                      `X-Fal-No-Retry` (https://fal.ai/docs/documentation/serverless/reliability/retries.md)
    unauthorized | locked             submit is answered at once with 401 / 403 (fal's bodies)
    rate_limited                      submit is answered at once with 429 `concurrent_requests_limit`
    queue_full                        submit is answered at once with 429 (as `fal_max_queue_length`)
    timeout_408 | conflict_409        submit is answered at once with 408 / 409 (fal_client retries both)
    ingress_502 | ingress_503 | ingress_504
                                      an nginx-style gateway error with no `x-fal-request-id` (clients retry)
    instant | manual | realistic | polls:N | timed:Q,R
                                      this request's progression policy
    latency:S | latency:uniform:A,B | latency:lognormal:MU,SIGMA
                                      delay the answer by S seconds (or a seeded draw, seconds)
    drop                              close the connection without a complete answer
    truncate | slow                   the output MP4 is served cut in half / in slow small chunks
    payload_error                     the webhook's payload could not be serialised: `payload: null` and
                                      `payload_error` (the result itself is unchanged)
    ok                                a plain success (useful in a scripted FIFO)

Scenarios also reach the other queue routes (`ROUTES`: a status poll, the status stream, a result fetch, a
cancel), one per call: there a scenario is what that one call meets instead of its normal answer, and only what
fal's gateway can answer to any call (`GATEWAY_REJECTIONS`: `ingress_502/503/504`, `timeout_408`, `conflict_409`,
`rate_limited`, `unauthorized`), `latency:…`, `drop` or `ok`. `for_route` refuses the rest with the reason: an
error type belongs to the request (fal's status never answers one: a failed request is `COMPLETED` + `error`,
and its result answers the same error every time), `locked` refuses only submits (a locked user's status calls
still answer 200, fal-ai/fal#1147), and policies, `truncate`, `slow`, `payload_error` and `queue_full` describe
a request.

Unknown tokens raise ScenarioError, which the HTTP layer answers as 400 `bad_request`.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Literal

from fal_emulator.errors import AuthenticationError, FalError, GatewayError, RequestError
from fal_emulator.failures import FAILURES, Failure
from fal_emulator.queue import PRESETS, Policy

HEADER = "x-fal-emulator-scenario"
PROMPT_TOKEN = re.compile(r"\[\[fal-emulator:([^\]]+)\]\]")

Fault = Literal["drop", "truncate", "slow", "payload_error"]
INGRESS = {"ingress_502": 502, "ingress_503": 503, "ingress_504": 504}
INGRESS_BODY = (
    "<html><head><title>{code}</title></head><body><center><h1>{code}</h1></center>"
    "<hr><center>nginx</center></body></html>"
)


class ScenarioError(ValueError):
    """A scenario token the emulator does not know."""


@dataclass(frozen=True)
class Latency:
    """A delay in seconds: fixed, or drawn from a distribution with the emulator's seeded random source."""

    kind: Literal["fixed", "uniform", "lognormal"]
    a: float
    b: float = 0.0

    def sample(self, rng: random.Random) -> float:
        """A delay in seconds, at most MAX_LATENCY."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return min(rng.lognormvariate(self.a, self.b), MAX_LATENCY)

    def describe(self) -> str:
        """The token: `latency:2`, `latency:uniform:1,3`, `latency:lognormal:0,0.5`."""
        return f"latency:{self.a:g}" if self.kind == "fixed" else f"latency:{self.kind}:{self.a:g},{self.b:g}"


QUEUE_ATTEMPTS = 10  # fal's queue tries a request on at most 10 runners (503, 504 and connection failures)
QUEUE_RETRIED_STATUSES = (503, 504)


@dataclass(frozen=True)
class Scenario:
    """What a request or a call meets. `failed_attempts`: only that many attempts fail with `failure` (fal's
    queue retries them); None: every attempt does (the request completes with `failure`)."""

    failure: Failure | None = None
    rejection: str | None = None
    policy: Policy | None = None
    latency: Latency | None = None
    faults: frozenset[Fault] = field(default_factory=frozenset)
    failed_attempts: int | None = None

    def attempts(self, *, no_retry: bool) -> tuple[int, bool]:
        """(attempts the queue makes, whether the last one fails), with or without `X-Fal-No-Retry`."""
        allowed = 1 if no_retry else QUEUE_ATTEMPTS
        if self.failure is None:
            return 1, False
        if self.failed_attempts is None:
            return 1, True
        if self.failed_attempts >= allowed:
            return allowed, True
        return self.failed_attempts + 1, False

    @property
    def plain(self) -> bool:
        return self == Scenario()

    def describe(self) -> str:
        """The scenario as the tokens `parse_scenario` reads back (`""` for a plain success)."""
        failure = self.failure.name if self.failure else None
        if failure and self.failed_attempts is not None:
            failure += f":{self.failed_attempts}"
        tokens = [name for name in (failure, self.rejection) if name]
        if self.policy is not None:
            tokens.append(self.policy.describe())
        if self.latency is not None:
            tokens.append(self.latency.describe())
        return ",".join([*tokens, *sorted(self.faults)])


def rejection_error(name: str) -> FalError | GatewayError:
    """The answer to a call rejected at once by scenario `name` (see the module docstring).

    408 and 409 bodies are undocumented: they take the `{"detail": reason phrase}` shape of fal's apps
    (FastAPI's HTTPException); fal_client 1.0.3 retries both (`RETRY_CODES`), @fal-ai/client 1.10.1 neither.
    """
    if name in INGRESS:
        code = INGRESS[name]
        return GatewayError(code, INGRESS_BODY.format(code=f"{code} Bad Gateway" if code == 502 else code))
    if name in STATUS_REJECTIONS:
        code, detail = STATUS_REJECTIONS[name]
        return FalError({"detail": detail}, status_code=code)
    if name == "unauthorized":
        return AuthenticationError("No user found for Key ID and Secret")
    if name == "locked":
        detail = "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
        return FalError({"detail": detail}, status_code=403)
    if name == "rate_limited":
        return RequestError(
            "concurrent_requests_limit", "Concurrent requests limit exceeded", 429, headers={"X-Fal-Needs-Retry": "1"}
        )
    if name == "queue_full":
        return queue_full(0)
    raise ScenarioError(f"unknown rejection {name!r}")


def queue_full(limit: int) -> FalError:
    """429 for `fal_max_queue_length` (https://fal.ai/docs/documentation/model-apis/common-parameters.md)."""
    return FalError({"detail": f"Queue is full: more than {limit} requests are waiting (fal_max_queue_length)"},
                    status_code=429)  # fmt: skip


STATUS_REJECTIONS = {"timeout_408": (408, "Request Timeout"), "conflict_409": (409, "Conflict")}
REJECTIONS = ("unauthorized", "locked", "rate_limited", "queue_full", *STATUS_REJECTIONS, *INGRESS)

Route = Literal["submit", "status", "stream", "result", "cancel"]
ROUTES: tuple[Route, ...] = ("submit", "status", "stream", "result", "cancel")
# What fal's gateway may answer to any call, before the call reaches the request: the only rejections a status
# poll, a status stream, a result fetch or a cancel meets. `locked` and `queue_full` refuse submits only.
GATEWAY_REJECTIONS = ("unauthorized", "rate_limited", *STATUS_REJECTIONS, *INGRESS)
SUBMIT_ONLY_REJECTIONS = frozenset(REJECTIONS) - frozenset(GATEWAY_REJECTIONS)
INSTEAD = (
    "to make the request fail, give it the error at submit (X-Fal-Emulator-Scenario, or a script with "
    'route submit) or fail it now (POST /_emulator/requests/{id}/fail {"error_type": ...})'
)


def _why_not(scenario: Scenario, route: str) -> str | None:
    """Why `scenario` cannot meet a call to `route` (not submit), or None when it can."""
    if scenario.failure is not None and scenario.failed_attempts is None:
        owner = (
            "a result answers the request's own outcome, the same every time (fal's queue docs, result)"
            if route == "result"
            else "fal never answers a request's error there: a failed request is COMPLETED with error and error_type"
        )
        return f"an error type belongs to the request: {owner}; {INSTEAD}"
    if scenario.rejection == "locked":
        return (
            "a locked account is refused at submit; its status, result and cancel calls still answer (fal-ai/fal#1147)"
        )
    if scenario.rejection in SUBMIT_ONLY_REJECTIONS:
        return f"{scenario.rejection} refuses submits only"
    if scenario.policy is not None or scenario.faults - {"drop"} or scenario.failed_attempts is not None:
        return "it describes a request (its timing, its video, its webhook, its attempts), not one call"
    return None


def for_route(scenario: Scenario, route: str, text: str = "") -> Scenario:
    """`scenario` as a call to `route` meets it. Raises ScenarioError for an unknown route, or, on a route other
    than submit, for anything but a gateway rejection (`GATEWAY_REJECTIONS`), `latency:…`, `drop` or `ok`: the
    message says why and what to use instead."""
    if route not in ROUTES:
        raise ScenarioError(f"unknown route {route!r}: use one of {', '.join(ROUTES)}")
    if route == "submit":
        return scenario
    reason = _why_not(scenario, route)
    if reason is not None:
        raise ScenarioError(
            f"scenario {text or scenario!r} cannot meet a {route} call: {reason}. On {route} use "
            f"{', '.join(GATEWAY_REJECTIONS)}, latency:…, drop or ok"
        )
    return scenario


def call_error(scenario: Scenario) -> FalError | GatewayError | None:
    """What a status poll, stream, result fetch or cancel answers instead of its normal answer, if anything: a
    gateway rejection (`for_route` lets no other error reach those routes)."""
    if scenario.rejection is not None and scenario.rejection in GATEWAY_REJECTIONS:
        return rejection_error(scenario.rejection)
    return None


def _number(text: str, token: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError(f"scenario token {token!r}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ScenarioError(f"scenario token {token!r}: {text!r} must be a finite number >= 0")
    return value


MAX_LATENCY = 120.0  # seconds


def _latency(token: str, arg: str) -> Latency:
    kind, _, params = arg.partition(":")
    if not params:
        seconds = _number(kind, token)
        if seconds > MAX_LATENCY:
            raise ScenarioError(f"scenario token {token!r}: at most {MAX_LATENCY:g} seconds")
        return Latency("fixed", seconds)
    parts = params.split(",")
    if kind not in ("uniform", "lognormal") or len(parts) != 2:
        raise ScenarioError(
            f"scenario token {token!r}: use latency:S, latency:uniform:A,B or latency:lognormal:MU,SIGMA"
        )
    if kind == "lognormal":  # mu may be negative: ln of seconds
        try:
            return Latency("lognormal", float(parts[0]), _number(parts[1], token))
        except ValueError:
            raise ScenarioError(f"scenario token {token!r}: {parts[0]!r} is not a number") from None
    low, high = _number(parts[0], token), _number(parts[1], token)
    if low > high or high > MAX_LATENCY:
        raise ScenarioError(f"scenario token {token!r}: need A <= B <= {MAX_LATENCY:g} seconds")
    return Latency("uniform", low, high)


def _tokens(text: str) -> list[str]:
    """Split on commas; a piece that is a number continues the token before it (`timed:1,2`)."""
    tokens: list[str] = []
    for piece in (part.strip() for part in text.split(",")):
        if tokens and re.fullmatch(r"-?[0-9.]+", piece):
            tokens[-1] += "," + piece
        else:
            tokens.append(piece)
    return tokens


def parse_scenario(text: str) -> Scenario:
    """Parse `TOKEN[,TOKEN…]`. Raises ScenarioError naming the bad token and the known ones."""
    failure: Failure | None = None
    rejection: str | None = None
    policy: Policy | None = None
    latency: Latency | None = None
    faults: set[Fault] = set()
    failed_attempts: int | None = None
    for token in _tokens(text):
        name, _, arg = token.partition(":")
        if not token or token == "ok":
            continue
        if name in FAILURES and arg:
            if failure is not None or rejection is not None:
                raise ScenarioError(f"scenario {text!r} names two outcomes; give one error or rejection")
            failure, failed_attempts = FAILURES[name], _attempts(token, arg, FAILURES[name])
        elif token in FAILURES or token in REJECTIONS:
            if failure is not None or rejection is not None:
                raise ScenarioError(f"scenario {text!r} names two outcomes; give one error or rejection")
            if token in FAILURES:
                failure = FAILURES[token]
            else:
                rejection = token
        elif token in ("drop", "truncate", "slow", "payload_error"):
            faults.add(token)  # type: ignore[arg-type]
        elif name == "latency" and arg:
            latency = _latency(token, arg)
        elif token in PRESETS or name in ("polls", "timed"):
            try:
                policy = Policy.parse(token)
            except ValueError as exc:
                raise ScenarioError(str(exc)) from None
        else:
            raise ScenarioError(
                f"unknown scenario {token!r}: use an error type ({', '.join(sorted(FAILURES))}), "
                f"{', '.join(REJECTIONS)}, a policy, latency:…, drop, truncate, slow, payload_error or ok"
            )
    return Scenario(failure, rejection, policy, latency, frozenset(faults), failed_attempts)


def _attempts(token: str, arg: str, failure: Failure) -> int:
    if failure.status_code not in QUEUE_RETRIED_STATUSES:
        raise ScenarioError(
            f"scenario token {token!r}: fal's queue retries only runner failures (503, 504), not {failure.name}"
        )
    if not arg.isdigit() or int(arg) < 1:
        raise ScenarioError(f"scenario token {token!r}: use {failure.name}:N with N >= 1 failed attempts")
    return int(arg)


def scenario_in_prompt(prompt: object) -> str | None:
    """The TOKENS of a `[[fal-emulator:TOKENS]]` marker in a prompt, if there is one."""
    match = PROMPT_TOKEN.search(prompt) if isinstance(prompt, str) else None
    return match.group(1) if match else None
