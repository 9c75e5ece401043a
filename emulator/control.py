"""A small typed client of the control plane (`/_emulator/`, see `fal_emulator.http.control_routes`).

    control = EmulatorControl("http://127.0.0.1:8470")
    control.fail_next("content_policy_violation")        # the next submit to any endpoint fails so
    control.fail_next("ingress_503", times=2, route="status", request_id=rid)   # its next 2 polls: nginx 503
    control.set_policy("manual", "fal-ai/veo3/image-to-video")
    control.advance(30)                                  # the virtual clock moves 30 s on
    [entry] = control.journal(method="POST", status=200)

Every call is one HTTP request over plain httpx (no proxies from the environment: the emulator is
always reached directly). A non-2xx answer raises ControlError carrying the status and the body.
The pytest fixture (`fal_emulator.pytest_plugin`) is this client plus the server's addresses.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import httpx

TOKEN_HEADER = "X-Fal-Emulator-Token"
ANY_ENDPOINT = "*"
POLL_INTERVAL = 0.02  # seconds between looks at the webhook deliveries in wait_for_webhooks()


class ControlError(RuntimeError):
    """The control plane answered with an error status."""

    def __init__(self, method: str, path: str, status_code: int, body: Any) -> None:
        detail = body.get("detail", body) if isinstance(body, dict) else body
        super().__init__(f"{method} {path} -> {status_code}: {detail}")
        self.status_code = status_code
        self.body = body


class EmulatorControl:
    """The control plane of the emulator at `base_url` (its plain-HTTP or HTTPS base URL).

    `token` is the control token, needed only when the emulator listens beyond loopback; `verify` is
    passed to httpx (a CA bundle path for the HTTPS listener).
    """

    def __init__(
        self, base_url: str, *, token: str | None = None, verify: str | bool = True, timeout: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {TOKEN_HEADER: token} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, verify=verify, timeout=timeout, trust_env=False
        )

    # -- plumbing ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None) -> Any:
        response = self._http.request(method, path, json=json, params=params)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        if response.is_error:
            raise ControlError(method, path, response.status_code, body)
        return body

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EmulatorControl:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- state ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """`{"status": "ok", "endpoints": N}`."""
        result: dict[str, Any] = self._call("GET", "/_emulator/health")
        return result

    def reset(self, seed: int | None = None) -> None:
        """Forget requests, scripted outcomes, per-endpoint policies, the journal, webhooks and uploads.

        Request ids restart from `seed` (default: the server's `--seed`). The default policy and the clock
        are left as they are (the pytest fixture restores those too).
        """
        self._call("POST", "/_emulator/reset", json={} if seed is None else {"seed": seed})

    def seed(self, seed: int) -> None:
        """Reseed request ids and the seeded fault draws (latency distributions)."""
        self._call("POST", "/_emulator/seed", json={"seed": seed})

    # -- the clock -----------------------------------------------------------------------------

    def clock(self) -> dict[str, Any]:
        """`{"now": seconds, "frozen": bool, "scale": x}`."""
        result: dict[str, Any] = self._call("GET", "/_emulator/clock")
        return result

    def advance(self, seconds: float) -> float:
        """Move the virtual clock `seconds` on (frozen or not); returns the new `now`."""
        now: float = self._call("POST", "/_emulator/clock", json={"advance": seconds})["now"]
        return now

    def freeze(self, frozen: bool = True) -> None:
        """Stop the clock (`freeze()`), so only `advance()` moves time; `freeze(False)` restarts it."""
        self._call("POST", "/_emulator/clock", json={"freeze": frozen})

    def unfreeze(self) -> None:
        self.freeze(False)

    def set_scale(self, scale: float) -> None:
        """Virtual seconds per real second (e.g. 20 with the `realistic` policy)."""
        self._call("POST", "/_emulator/clock", json={"scale": scale})

    # -- progression policy --------------------------------------------------------------------

    def policy(self) -> dict[str, Any]:
        """`{"default": kind, "endpoints": {endpoint id: kind}}`."""
        result: dict[str, Any] = self._call("GET", "/_emulator/policy")
        return result

    def set_policy(self, policy: str, endpoint_id: str | None = None) -> None:
        """The policy for new requests: of every endpoint, or of `endpoint_id` only.

        `default`, `instant`, `realistic`, `manual`, `polls:N` or `timed:QUEUE_S,RUN_S`.
        """
        payload = {"policy": policy} if endpoint_id is None else {"policy": policy, "endpoint_id": endpoint_id}
        self._call("PUT", "/_emulator/policy", json=payload)

    # -- runners ---------------------------------------------------------------------------------

    def concurrency(self) -> dict[str, Any]:
        """`{"concurrency": N | None, "running": n}`: the account's runners and how many are busy."""
        result: dict[str, Any] = self._call("GET", "/_emulator/concurrency")
        return result

    def set_concurrency(self, limit: int | None) -> None:
        """At most `limit` requests IN_PROGRESS at once (None: no limit); the rest wait IN_QUEUE, as on fal
        (new accounts get 2). `reset()` puts back the server's `--concurrency`."""
        self._call("PUT", "/_emulator/concurrency", json={"concurrency": limit})

    # -- scripted outcomes (a FIFO per endpoint) -----------------------------------------------

    def script(
        self, endpoint_id: str, scenarios: list[str], *, route: str = "submit", request_id: str | None = None
    ) -> None:
        """Queue one scenario per coming call, in order.

        `route` is `"submit"` (default: a submit to `endpoint_id`, `"*"` for any, or its `fal.run`),
        `"status"` (a status poll), `"stream"` (a status stream), `"result"` or `"cancel"`; for those four the
        calls are about requests submitted to `endpoint_id`, or only `request_id` when given. At submit a
        scenario is any error type (`"content_policy_violation"`), a rejection, a policy, a latency token,
        `"drop"` or `"ok"` (a normal answer); on the other four routes only what fal's gateway answers to any
        call: `"ingress_502"`/`"ingress_503"`/`"ingress_504"`, `"timeout_408"`, `"conflict_409"`,
        `"rate_limited"`, `"unauthorized"`, a latency token, `"drop"` or `"ok"`. Several tokens join with
        commas (see fal_emulator.scenarios).

        Raises ControlError 400 for a bad token or a token that cannot meet that route (an error type or a
        policy on a status poll: fail the request with `fail()` or at submit instead), 404 for an unknown
        endpoint or request id.
        """
        payload: dict[str, Any] = {"endpoint_id": endpoint_id, "outcomes": list(scenarios), "route": route}
        if request_id is not None:
            payload["request_id"] = request_id
        self._call("POST", "/_emulator/outcomes", json=payload)

    def fail_next(
        self,
        scenario: str,
        endpoint_id: str = ANY_ENDPOINT,
        times: int = 1,
        *,
        route: str = "submit",
        request_id: str | None = None,
    ) -> None:
        """The next `times` calls to `route` meet `scenario`, then calls are answered normally again.

        `fail_next("ingress_503", times=2, route="status", request_id=rid)`: the next 2 status polls of `rid`
        get an nginx 503 (fal_client retries them). Defaults: the next submit to any endpoint. See `script`.
        """
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        self.script(endpoint_id, [scenario] * times, route=route, request_id=request_id)

    def outcomes(self) -> dict[str, int]:
        """How many scripted outcomes wait: per endpoint id (or `"*"`) for submits, and as `"route:selector"`
        (`"status:*"`, `"result:<request id>"`) for the other routes."""
        result: dict[str, int] = self._call("GET", "/_emulator/outcomes")
        return result

    def clear_outcomes(self) -> None:
        self._call("DELETE", "/_emulator/outcomes")

    # -- the journal ---------------------------------------------------------------------------

    def journal(self, **filters: str | int) -> list[dict[str, Any]]:
        """Exchanges and webhook attempts, oldest first, whose fields equal every filter.

        Filters: `kind` ("http" | "webhook"), `method`, `path`, `status`, `request_id`. Entries carry
        `headers` with credentials redacted (`"authorization": "Key ***"`) and `body_sha256`.
        """
        params = {name: str(value) for name, value in filters.items()}
        result: list[dict[str, Any]] = self._call("GET", "/_emulator/journal", params=params)
        return result

    def clear_journal(self) -> None:
        self._call("DELETE", "/_emulator/journal")

    # -- requests ------------------------------------------------------------------------------

    def requests(self, **filters: str) -> list[dict[str, Any]]:
        """Every request, oldest first: `{request_id, endpoint_id, status, queue_position, submitted_at,
        started_at, completed_at, age_seconds, policy, scenario, error_type, status_code, price_usd}`.

        `filters`: `endpoint_id`, `status`, `error_type` (`ok`: none, `error`: any).
        """
        result: list[dict[str, Any]] = self._call("GET", "/_emulator/requests", params=filters)
        return result

    def request(self, request_id: str) -> dict[str, Any]:
        """One request: its `requests()` fields, `input`, `logs`, `webhook_url`, planned `outcome`, `timeline`
        (its states on the emulator's clock) and `webhooks` (attempts, with `signature_valid`)."""
        result: dict[str, Any] = self._call("GET", f"/_emulator/requests/{request_id}")
        return result

    def totals(self) -> dict[str, Any]:
        """`{requests, by_status, by_error_type, median_seconds: {IN_QUEUE, IN_PROGRESS}, succeeded,
        spend_avoided_usd, unpriced}`."""
        result: dict[str, Any] = self._call("GET", "/_emulator/totals")
        return result

    def set_request_policy(self, request_id: str, policy: str) -> None:
        self._call("PUT", f"/_emulator/requests/{request_id}/policy", json={"policy": policy})

    def step(self, request_id: str) -> dict[str, Any]:
        """Move a request one state on now (IN_QUEUE -> IN_PROGRESS -> COMPLETED)."""
        result: dict[str, Any] = self._call("POST", f"/_emulator/requests/{request_id}/step")
        return result

    def complete(self, request_id: str) -> dict[str, Any]:
        """Complete a request now with its planned outcome."""
        result: dict[str, Any] = self._call("POST", f"/_emulator/requests/{request_id}/complete")
        return result

    def fail(self, request_id: str, error_type: str = "internal_server_error") -> dict[str, Any]:
        """Complete a request now with fal error `error_type`."""
        path = f"/_emulator/requests/{request_id}/fail"
        result: dict[str, Any] = self._call("POST", path, json={"error_type": error_type})
        return result

    def cancel(self, request_id: str) -> dict[str, Any]:
        """Cancel a request now, as the client's cancel does (it completes as `client_cancelled`)."""
        result: dict[str, Any] = self._call("POST", f"/_emulator/requests/{request_id}/cancel")
        return result

    # -- webhooks ------------------------------------------------------------------------------

    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt: `{request_id, url, attempt, status, error, next_attempt_in?}`."""
        result: list[dict[str, Any]] = self._call("GET", "/_emulator/webhooks")
        return result

    def wait_for_webhooks(self, count: int = 1, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The deliveries once at least `count` attempts were made (they are sent in the background).

        Raises TimeoutError with the deliveries so far after `timeout` real seconds.
        """
        deadline = time.monotonic() + timeout
        while len(deliveries := self.webhooks()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(deliveries)} of {count} webhook deliveries after {timeout} s: {deliveries}")
            time.sleep(POLL_INTERVAL)
        return deliveries

    def jwks(self) -> dict[str, Any]:
        """The JWKS (`{"keys": [{kty: OKP, crv: Ed25519, x, kid}]}`) that verifies webhook signatures."""
        result: dict[str, Any] = self._call("GET", "/.well-known/jwks.json")
        return result


class FalEmulator(EmulatorControl):
    """A running emulator: where it listens, what points fal_client at it, and its control plane.

    This is what the pytest fixture `fal_emulator` gives a test. `reset()` brings the server back to
    how it started: no requests, scripts, journal or webhooks, the starting policy, a running clock at
    its starting scale.
    """

    def __init__(self, *, url: str, http_url: str, ca_bundle: str, key: str, env: dict[str, str], policy: str) -> None:
        super().__init__(http_url)
        self.url = url  # the HTTPS base URL, the one fal_client talks to
        self.http_url = http_url
        self.ca_bundle = ca_bundle  # certifi's CAs plus the emulator's own (what SSL_CERT_FILE points at)
        self.key = key  # the FAL_KEY the fixture sets
        self.env = env  # FAL_KEY, FAL_QUEUE_RUN_HOST, FAL_RUN_HOST, SSL_CERT_FILE
        self.starting_policy = policy
        self.starting_scale = float(self.clock()["scale"])

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.set_policy(self.starting_policy)
        self._call("POST", "/_emulator/clock", json={"freeze": False, "scale": self.starting_scale})
