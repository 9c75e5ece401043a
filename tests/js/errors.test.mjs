// fal's errors as @fal-ai/client sees them, under both set-ups: ApiError / ValidationError with fal's
// status and body. The `X-Fal-Emulator-Scenario` header picks the failure for one request.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ApiError, ValidationError } from "@fal-ai/client";

import {
  EMULATOR_URL,
  POLL_INTERVAL,
  SCENARIO_HEADER,
  SEED_ENDPOINT,
  SEED_INPUT,
  middlewareClient,
  pollUntilCompleted,
  proxyClient,
  toEmulator,
} from "./helpers.mjs";

function isContentPolicyViolation(error) {
  assert.ok(error instanceof ApiError, String(error));
  assert.equal(error.status, 422);
  assert.equal(error.body.detail[0].type, "content_policy_violation");
  assert.deepEqual(error.body.detail[0].loc, ["body", "prompt"]);
  assert.match(error.requestId, /^[0-9a-f-]{36}$/);
  return true;
}

for (const [name, makeClient] of [
  ["requestMiddleware", middlewareClient],
  ["proxyUrl", proxyClient],
]) {
  describe(`errors through ${name}`, () => {
    it("a missing prompt: ValidationError 422 with fieldErrors at body.prompt", async () => {
      const fal = makeClient();
      const { prompt, ...input } = SEED_INPUT;
      assert.ok(prompt);
      await assert.rejects(fal.subscribe(SEED_ENDPOINT, { input, pollInterval: POLL_INTERVAL }), (error) => {
        assert.ok(error instanceof ValidationError, String(error));
        assert.equal(error.status, 422);
        assert.deepEqual(error.fieldErrors[0].loc, ["body", "prompt"]);
        assert.equal(error.getFieldErrors("prompt").length, 1);
        return true;
      });
      await assert.rejects(fal.run(SEED_ENDPOINT, { input }), ValidationError);
    });

    it("an invalid enum value: ValidationError naming the field and the allowed values", async () => {
      const fal = makeClient();
      const input = { ...SEED_INPUT, aspect_ratio: "4:3" };
      // As on fal, the queue takes the body; the runner's 422 comes back as the result (validation.test.mjs).
      const { request_id: requestId } = await fal.queue.submit(SEED_ENDPOINT, { input });
      await pollUntilCompleted(fal, SEED_ENDPOINT, requestId);
      await assert.rejects(fal.queue.result(SEED_ENDPOINT, { requestId }), (error) => {
        assert.ok(error instanceof ValidationError, String(error));
        const [item] = error.getFieldErrors("aspect_ratio");
        assert.deepEqual(item.loc, ["body", "aspect_ratio"]);
        assert.equal(item.type, "literal_error");
        assert.match(item.msg, /'16:9'/);
        return true;
      });
    });

    it("content_policy_violation: subscribe (polling) rejects with ApiError 422", async () => {
      const fal = makeClient();
      const updates = [];
      await assert.rejects(
        fal.subscribe(SEED_ENDPOINT, {
          input: SEED_INPUT,
          headers: { [SCENARIO_HEADER]: "content_policy_violation" },
          pollInterval: POLL_INTERVAL,
          onQueueUpdate: (update) => updates.push(update),
        }),
        isContentPolicyViolation,
      );
      const completed = updates.at(-1);
      assert.equal(completed.status, "COMPLETED");
      assert.equal(completed.error_type, "content_policy_violation");
    });

    it("content_policy_violation: subscribe (streaming) rejects with ApiError 422", async () => {
      const fal = makeClient();
      await assert.rejects(
        fal.subscribe(SEED_ENDPOINT, {
          input: SEED_INPUT,
          headers: { [SCENARIO_HEADER]: "content_policy_violation" },
          mode: "streaming",
        }),
        isContentPolicyViolation,
      );
    });

    it("content_policy_violation: status has error + error_type, result throws", async () => {
      const fal = makeClient();
      const { request_id: requestId } = await fal.queue.submit(SEED_ENDPOINT, {
        input: SEED_INPUT,
        headers: { [SCENARIO_HEADER]: "content_policy_violation" },
      });
      const completed = (await pollUntilCompleted(fal, SEED_ENDPOINT, requestId)).at(-1);
      assert.equal(completed.error_type, "content_policy_violation");
      assert.equal(typeof completed.error, "string");
      await assert.rejects(fal.queue.result(SEED_ENDPOINT, { requestId }), isContentPolicyViolation);
    });

    it("an unknown endpoint: ApiError 404", async () => {
      const fal = makeClient();
      await assert.rejects(fal.queue.submit("fal-ai/no-such-model", { input: { prompt: "x" } }), (error) => {
        assert.ok(error instanceof ApiError, String(error));
        assert.equal(error.status, 404);
        return true;
      });
    });

    it("a refused key (scenario unauthorized): ApiError 401", async () => {
      const fal = makeClient();
      await assert.rejects(
        fal.queue.submit(SEED_ENDPOINT, { input: SEED_INPUT, headers: { [SCENARIO_HEADER]: "unauthorized" } }),
        (error) => {
          assert.ok(error instanceof ApiError, String(error));
          assert.equal(error.status, 401);
          assert.equal(typeof error.body.detail, "string");
          return true;
        },
      );
    });
  });
}

describe("fal.stream of a request that fails after its 200", () => {
  it("rejects done() and yields no event, never resolving with the error body", async () => {
    // Queued 10 s with a 1.5 s start deadline: a 504 after the answer began. The client ignores SSE event
    // names, so the emulator sends no data event and cuts the answer short.
    const clock = (scale) =>
      fetch(`${EMULATOR_URL}/_emulator/clock`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ scale }),
      });
    await clock(20); // the deadline passes in 75 ms of real time
    try {
      const fal = middlewareClient({
        requestMiddleware: async (request) => ({
          ...request,
          url: toEmulator(request.url),
          headers: { ...request.headers, [SCENARIO_HEADER]: "timed:10,1", "X-Fal-Request-Timeout": "1.5" },
        }),
      });
      const stream = await fal.stream(SEED_ENDPOINT, { input: SEED_INPUT });
      const rejected = assert.rejects(stream.done(), (error) => {
        assert.ok(error instanceof ApiError, String(error)); // the client's wrapping of fetch's "terminated"
        return true;
      });
      const events = [];
      for await (const event of stream) events.push(event);
      await rejected;
      assert.deepEqual(events, []);
    } finally {
      await clock(1);
    }
  });
});
