// @fal-ai/client 1.10.1's retry rules on status polls, result fetches, status streams and cancels, against
// faults scripted per request through the emulator's control plane; every count comes from its journal.
//
// From the client's source (queue.js, retry.js, request.js):
// - queue.status: QUEUE_STATUS_RETRY_CONFIG, 5 retries (6 attempts) on 429, 500, 502, 503, 504 (a status poll
//   meets only gateway answers: fal's status never answers a request's error);
// - queue.result: QUEUE_RETRY_CONFIG, 3 retries (4 attempts) on 429, 502, 503, 504;
// - queue.cancel: the client's own `retry` config (default 3 retries on 429, 502, 503, 504);
// - queue.streamStatus: never retried (its response handler reports the error instead of throwing it);
// - never a 504 with X-Fal-Request-Timeout-Type: user; 408 and 409 are not retried at all.
// Status and result fix their base delay at 1 s, but take `backoffMultiplier` and `enableJitter` from the
// client's config: with a multiplier of 0.001 the first retry waits 1 s and the later ones 1 ms, so each test
// that retries takes about 1 s (this file about 5 s).

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ApiError } from "@fal-ai/client";

import { EMULATOR_URL, POLL_INTERVAL, SEED_ENDPOINT, SEED_INPUT, middlewareClient } from "./helpers.mjs";

const FAST_I2V = "fal-ai/veo3.1/fast/image-to-video";

function quickRetries(extra = {}) {
  return middlewareClient({ retry: { backoffMultiplier: 0.001, enableJitter: false, ...extra } });
}

async function control(method, path, body) {
  const response = await fetch(`${EMULATOR_URL}/_emulator${path}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

// What the next calls of `route` about `requestId` meet, one scenario per call.
function script(route, requestId, outcomes) {
  return control("POST", "/outcomes", { route, request_id: requestId, outcomes });
}

// The status code of every call to `…/requests/{requestId}{suffix}`, oldest first.
async function codes(requestId, suffix) {
  const journal = await control("GET", "/journal?kind=http");
  return journal.filter((entry) => entry.path.endsWith(`/requests/${requestId}${suffix}`)).map((e) => e.status);
}

async function submitted(fal, headers = {}) {
  const { request_id: requestId } = await fal.queue.submit(SEED_ENDPOINT, { input: SEED_INPUT, headers });
  return requestId;
}

function apiError(status) {
  return (error) => {
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.status, status);
    return true;
  };
}

describe("@fal-ai/client retries", () => {
  it("queue.status retries 503, 502, 504 and 429, then answers", async () => {
    const fal = quickRetries();
    const requestId = await submitted(fal);
    await script("status", requestId, ["ingress_503", "ingress_502", "ingress_504", "rate_limited"]);
    const status = await fal.queue.status(SEED_ENDPOINT, { requestId });
    assert.equal(status.request_id, requestId);
    assert.deepEqual(await codes(requestId, "/status"), [503, 502, 504, 429, 202]);
  });

  it("queue.status gives up after 6 attempts (5 retries)", async () => {
    const fal = quickRetries();
    const requestId = await submitted(fal);
    await script("status", requestId, Array(7).fill("ingress_502"));
    await assert.rejects(fal.queue.status(SEED_ENDPOINT, { requestId }), apiError(502));
    assert.deepEqual(await codes(requestId, "/status"), Array(6).fill(502));
    assert.deepEqual(await control("GET", "/outcomes"), { [`status:${requestId}`]: 1 });
    await control("DELETE", "/outcomes");
  });

  for (const [token, status] of [
    ["timeout_408", 408],
    ["conflict_409", 409],
  ]) {
    it(`queue.status does not retry a ${status} (${token})`, async () => {
      const fal = quickRetries();
      const requestId = await submitted(fal);
      await script("status", requestId, [token]);
      await assert.rejects(fal.queue.status(SEED_ENDPOINT, { requestId }), apiError(status));
      assert.deepEqual(await codes(requestId, "/status"), [status]);
    });
  }

  it("subscribe (polling) rides out an ingress 503 on a poll", async () => {
    const fal = quickRetries();
    await control("POST", "/outcomes", { route: "status", endpoint_id: FAST_I2V, outcomes: ["ingress_503"] });
    const result = await fal.subscribe(FAST_I2V, {
      input: { prompt: "A lighthouse at dusk", image_url: "https://example.com/lighthouse.png" },
      pollInterval: POLL_INTERVAL,
    });
    assert.equal(result.data.video.content_type, "video/mp4");
    assert.deepEqual((await codes(result.requestId, "/status")).slice(0, 2), [503, 202]);
  });

  it("queue.result gives up after 4 attempts (3 retries)", async () => {
    const fal = quickRetries();
    const requestId = await submitted(fal, { "X-Fal-Emulator-Scenario": "instant" });
    await script("result", requestId, ["ingress_504", "rate_limited", "ingress_503", "ingress_502"]);
    await assert.rejects(fal.queue.result(SEED_ENDPOINT, { requestId }), apiError(502));
    assert.deepEqual(await codes(requestId, ""), [504, 429, 503, 502]);
    const result = await fal.queue.result(SEED_ENDPOINT, { requestId });
    assert.equal(result.data.video.content_type, "video/mp4");
  });

  it("queue.result never retries a 500: the error of a request that failed, the same every time", async () => {
    const fal = quickRetries();
    const requestId = await submitted(fal, { "X-Fal-Emulator-Scenario": "instant,runner_server_error" });
    await assert.rejects(fal.queue.result(SEED_ENDPOINT, { requestId }), apiError(500));
    await assert.rejects(fal.queue.result(SEED_ENDPOINT, { requestId }), apiError(500));
    assert.deepEqual(await codes(requestId, ""), [500, 500]);
  });

  it("an error type on a status poll is refused: fal never answers one there", async () => {
    const requestId = await submitted(quickRetries());
    const response = await fetch(`${EMULATOR_URL}/_emulator/outcomes`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ route: "status", request_id: requestId, outcomes: ["runner_disconnected"] }),
    });
    assert.equal(response.status, 400);
    assert.match((await response.json()).detail, /POST \/_emulator\/requests\/\{id\}\/fail/);
  });

  it("queue.result never retries a 504 with X-Fal-Request-Timeout-Type: user (a start deadline passed)", async () => {
    const fal = quickRetries();
    const { request_id: requestId } = await fal.queue.submit(SEED_ENDPOINT, {
      input: SEED_INPUT,
      startTimeout: 2, // seconds: X-Fal-Request-Timeout
      headers: { "X-Fal-Emulator-Scenario": "manual" }, // never leaves the queue by itself
    });
    await control("POST", "/clock", { advance: 3 });
    await assert.rejects(fal.queue.result(SEED_ENDPOINT, { requestId }), (error) => {
      assert.ok(error instanceof ApiError, String(error));
      assert.equal(error.status, 504);
      assert.equal(error.timeoutType, "user");
      return true;
    });
    assert.deepEqual(await codes(requestId, ""), [504]);
  });

  it("queue.streamStatus is not retried: one 503 rejects done()", async () => {
    const fal = quickRetries();
    const requestId = await submitted(fal);
    await script("stream", requestId, ["ingress_503"]);
    const stream = await fal.queue.streamStatus(SEED_ENDPOINT, { requestId, logs: true });
    await assert.rejects(stream.done(), apiError(503));
    assert.deepEqual(await codes(requestId, "/status/stream"), [503]);
  });

  it("queue.cancel follows the client's own retry config (3 retries by default)", async () => {
    const fal = quickRetries({ baseDelay: 1 }); // cancel takes the whole config, base delay included
    const requestId = await submitted(fal, { "X-Fal-Emulator-Scenario": "manual" });
    await script("cancel", requestId, ["rate_limited", "ingress_503", "ingress_504"]);
    await fal.queue.cancel(SEED_ENDPOINT, { requestId });
    assert.deepEqual(await codes(requestId, "/cancel"), [429, 503, 504, 202]);
  });
});
