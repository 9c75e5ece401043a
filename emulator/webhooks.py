"""Webhooks: `?fal_webhook=URL` gets fal's OK / ERROR payload, signed with Ed25519 as fal signs it.

Payloads (https://fal.ai/docs/documentation/model-apis/inference/webhooks.md):

    {"request_id", "gateway_request_id", "status": "OK", "payload": <output>}
    {"request_id", "gateway_request_id", "status": "ERROR", "error": "Invalid status code: 422",
     "payload": <error body>}

Headers: `X-Fal-Webhook-Request-Id`, `X-Fal-Webhook-User-Id`, `X-Fal-Webhook-Timestamp` (POSIX seconds
of the emulator's clock) and `X-Fal-Webhook-Signature`: the hex Ed25519 signature of
`request_id + "\\n" + user_id + "\\n" + timestamp + "\\n" + sha256_hex(body)`. The public key is served
as a JWKS at `/.well-known/jwks.json` (`kty: OKP`, `crv: Ed25519`, `x`: base64url).

Delivery: a 2xx acknowledges; a failure is retried 10 times over 2 hours (docs.fal.ai, model endpoints ->
webhooks: "retry 10 times in the span of 2 hours"), on the emulator's clock: 7 s after the first attempt,
then each wait twice the one before (7, 14, 28, … 3584 s: the tenth retry comes 7161 s after the first
attempt), never later than 2 hours after completion; a 3xx is a permanent failure. Targets must be
loopback or listed in the `webhook_allow` setting. Every attempt is recorded in `deliveries` (the latest
`MAX_DELIVERIES`, with the signed `X-Fal-Webhook-*` headers and the body's `body_sha256`, so the signature
can be checked later) and in the journal (signature redacted).

Pending deliveries are kept where the requests are (`fal_emulator.deliveries`): with `--store sqlite` or
`--store redis` a delivery is written before the submit is answered, with its attempt count and next attempt
time, so a process killed before it delivered leaves it to a restart or to another process on the same state;
each attempt is claimed (with a lease) by one process, so it is made once.

One bad request never stops deliveries: an attempt that fails in any way (an invalid URL, a port out of
range, a request that vanished) is recorded, journaled and logged at once, and the loop goes on; a URL
that cannot be sent to is a permanent failure. `reset()` restarts the loop should it ever have ended.
The client ignores `HTTP_PROXY`/`HTTPS_PROXY` (`trust_env=False`): it connects to the allowed target only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import json
import logging
import urllib.parse
from collections import deque
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fal_emulator.deliveries import Delivery, DeliveryBook, close_book, make_book
from fal_emulator.errors import RequestNotFound
from fal_emulator.journal import redact, redact_url
from fal_emulator.limits import url_problem
from fal_emulator.queue import Outcome, Status
from fal_emulator.service import Emulator

USER_ID = "fal-emulator-user"
TICK = 0.05  # seconds between two looks at pending deliveries
MAX_RETRIES = 10
RETRY_WINDOW = 7200.0  # seconds after completion
FIRST_RETRY_DELAY = 7.0  # seconds; each later wait doubles: 10 retries within RETRY_WINDOW
FIRST_TIMEOUT, RETRY_TIMEOUT = 15.0, 120.0  # seconds per attempt
LEASE_MARGIN = 10.0  # seconds a claim outlasts its attempt's timeout
MAX_DELIVERIES = 10_000  # attempts kept in `deliveries`, newest last

logger = logging.getLogger("fal_emulator.webhooks")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """The emulator's Ed25519 webhook key, kept in `state_dir/webhook-key.pem` across restarts."""

    def __init__(self, state_dir: Path) -> None:
        path = state_dir / "webhook-key.pem"
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(key, Ed25519PrivateKey)
        else:
            key = Ed25519PrivateKey.generate()
            state_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )  # fmt: skip
            )
        self._key = key
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]
        self.jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw), "kid": self.key_id,
                               "use": "sig", "alg": "EdDSA"}]}  # fmt: skip

    def headers(self, request_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        message = f"{request_id}\n{USER_ID}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": USER_ID,
            "X-Fal-Webhook-Timestamp": str(timestamp),
            "X-Fal-Webhook-Signature": self._key.sign(message).hex(),
        }


# (inferred wording) fal documents only that `payload` is null and `payload_error` holds the details.
PAYLOAD_ERROR = (
    "Response payload is not JSON serializable. Either return a JSON serializable object or use the queue "
    "endpoint to retrieve the response."
)


def payload(
    request_id: str, outcome: Outcome, *, payload_error: bool = False, gateway_request_id: str | None = None
) -> dict[str, Any]:
    """fal's webhook body for a completed request. `gateway_request_id` names the last attempt when fal's queue
    retried the request (default: `request_id`). With `payload_error` (the `payload_error` scenario) the
    payload could not be serialised: `payload` is null and `payload_error` says why; the status stays OK or
    ERROR as the outcome is ("Payload errors", https://fal.ai/docs/model-endpoints/webhooks)."""
    body: dict[str, Any] = {"request_id": request_id, "gateway_request_id": gateway_request_id or request_id}
    if outcome.ok:
        body.update(status="OK", payload=outcome.body)
    else:
        body.update(status="ERROR", error=f"Invalid status code: {outcome.status_code}", payload=outcome.body)
    if payload_error:
        body.update(payload=None, payload_error=PAYLOAD_ERROR)
    return body


def retry_delay(attempts: int) -> float:
    """Seconds from attempt number `attempts` (1 = the first) to the next: 7 s, then doubling."""
    return FIRST_RETRY_DELAY * 2.0 ** (attempts - 1)


def lease(attempts: int) -> float:
    """Wall-clock seconds a process holds a delivery for its attempt number `attempts + 1`: the attempt's
    timeout plus `LEASE_MARGIN`, so a live holder keeps it; a dead holder's claim is taken over after it."""
    return (FIRST_TIMEOUT if attempts == 0 else RETRY_TIMEOUT) + LEASE_MARGIN


def allowed(url: str, allow: tuple[str, ...]) -> bool:
    """Is `url` a valid http(s) URL on loopback or on a host in `allow`?"""
    if url_problem(url) is not None:
        return False
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        return False
    if host == "localhost" or host in allow:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Webhooks:
    """Delivers webhooks of completed requests; `run()` is the background loop. Pending deliveries live in
    `book` (`fal_emulator.deliveries`: in memory, or with the durable store, where any process on the same state
    takes them over); `deliveries` are this process's attempts."""

    def __init__(self, emulator: Emulator, signer: Signer, book: DeliveryBook | None = None) -> None:
        self.emulator = emulator
        self.signer = signer
        self.book = book if book is not None else make_book(emulator.settings)
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=MAX_DELIVERIES)
        self._task: asyncio.Task[None] | None = None

    def watch(
        self, request_id: str, url: str, *, payload_error: bool = False, gateway_request_id: str | None = None
    ) -> None:
        """Deliver `request_id`'s webhook to `url` once it completes. Written to the book before it returns."""
        self.book.add(Delivery(request_id, url, payload_error=payload_error, gateway_request_id=gateway_request_id))

    def start(self) -> asyncio.Task[None]:
        """Run the delivery loop in the background (again, if it ever ended); returns its task."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run())
        return self._task

    @property
    def running(self) -> bool:
        """Is the delivery loop running?"""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Cancel the delivery loop and wait for it to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def close(self) -> None:
        """Close the book's connection (after `stop`)."""
        close_book(self.book)

    def reset(self) -> None:
        """Forget pending deliveries (every process's, with a durable book) and this process's recorded attempts;
        revive the loop if it was started and ended."""
        self.book.reset()
        self.deliveries.clear()
        if self._task is not None and self._task.done():
            self.start()

    async def run(self) -> None:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            while True:
                try:
                    await self.tick(client)
                except Exception:  # never let one bad delivery end the loop
                    logger.exception("webhook delivery loop: unexpected error; continuing")
                await asyncio.sleep(TICK)

    async def tick(self, client: httpx.AsyncClient) -> None:
        """Attempt every delivery that is due now and that this process can claim; a delivery that fails
        unexpectedly is recorded and dropped."""
        now = self.emulator.clock.now()
        for pending in self.book.due(now):
            try:
                if pending.body is None:  # not attempted yet: wait for the request to complete
                    try:
                        view = self.emulator.queue.status(pending.request_id, poll=False)
                    except RequestNotFound:  # gone before its first attempt (expired, or reset): nothing to send
                        self.book.finish(pending.request_id)
                        continue
                    if view.status is not Status.COMPLETED:
                        continue
                claimed = self.book.claim(pending.request_id, lease(pending.attempts))
                if claimed is None:  # another process took it, or it was delivered meanwhile
                    continue
                if claimed.next_at > now:  # another process made this attempt since we looked
                    self.book.release(claimed)
                    continue
                pending = claimed
                await self._attempt(client, pending, now)
            except Exception as exc:
                self.book.finish(pending.request_id)
                logger.exception("webhook for request %s: giving up", pending.request_id)
                self._record({"request_id": pending.request_id, "url": redact_url(pending.url),
                              "attempt": pending.attempts, "status": None,
                              "error": f"{type(exc).__name__}: {exc}"}, pending.url)  # fmt: skip

    def _record(self, record: dict[str, Any], url: str) -> None:
        """Keep an attempt in `deliveries` and in the journal (its signature redacted there)."""
        self.deliveries.append(record)
        try:
            path = urllib.parse.urlsplit(url).path
        except ValueError:
            path = ""
        shown = {**record, "headers": redact(record["headers"].items())} if "headers" in record else record
        self.emulator.journal.record("webhook", method="POST", path=path, **shown)

    async def _attempt(self, client: httpx.AsyncClient, pending: Delivery, now: float) -> None:
        """Make the next attempt of a claimed delivery, then write its result to the book (which ends the claim)."""
        if pending.body is None:
            request = self.emulator.store.get(pending.request_id)
            if request is None or request.completed_at is None:
                self.book.finish(pending.request_id)
                return
            sent = payload(pending.request_id, request.outcome, payload_error=pending.payload_error,
                           gateway_request_id=pending.gateway_request_id)  # fmt: skip
            pending.body, pending.completed_at = json.dumps(sent), request.completed_at
        body = pending.body.encode()
        pending.attempts += 1
        record: dict[str, Any] = {"request_id": pending.request_id, "url": redact_url(pending.url),
                                  "attempt": pending.attempts}  # fmt: skip
        retry = False
        problem = url_problem(pending.url)
        if problem is not None:
            logger.warning("webhook for request %s cannot be sent: invalid URL: %s", pending.request_id, problem)
            record.update(status=None, error=f"invalid URL: {problem}: permanent failure")
        elif not allowed(pending.url, self.emulator.settings.webhook_allow):
            record.update(status=None, error="target not allowed (loopback only; see the webhook_allow setting)")
        else:
            signed = self.signer.headers(pending.request_id, int(now), body)
            record.update(body_sha256=hashlib.sha256(body).hexdigest(), headers=signed)  # so a reader can verify it
            headers = {"Content-Type": "application/json", **signed}
            timeout = FIRST_TIMEOUT if pending.attempts == 1 else RETRY_TIMEOUT
            try:
                answer = await client.post(pending.url, content=body, headers=headers, timeout=timeout)
                record.update(status=answer.status_code, error=None)
                retry = answer.status_code >= 400
                if 300 <= answer.status_code < 400:
                    record["error"] = "redirects are not followed: permanent failure"
            except httpx.HTTPError as exc:  # connection refused, timeouts, ...: try again later
                record.update(status=None, error=f"{type(exc).__name__}: {exc}")
                retry = True
            except Exception as exc:  # httpx.InvalidURL, OverflowError (a port out of range), ...: permanent
                logger.warning("webhook for request %s cannot be sent: %s: %s", pending.request_id,
                               type(exc).__name__, exc)  # fmt: skip
                record.update(status=None, error=f"{type(exc).__name__}: {exc}: permanent failure")
        delay = retry_delay(pending.attempts)
        if retry and pending.attempts <= MAX_RETRIES and now + delay <= pending.completed_at + RETRY_WINDOW:
            pending.next_at = now + delay
            record["next_attempt_in"] = delay
            self.book.release(pending)
        else:
            self.book.finish(pending.request_id)
        self._record(record, pending.url)
