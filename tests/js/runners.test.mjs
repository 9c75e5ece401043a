// The runner model through @fal-ai/client: a concurrency limit, `priority: "low"`, a bad priority.
//
// The file steers the shared emulator through its control plane: one runner, `timed:0,30` (a request may
// start at once and runs 30 s) and a frozen virtual clock that the tests advance, so each state is exact.
// It resets the emulator before and after, so the other files see the server as started.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { ApiError } from "@fal-ai/client";

import { EMULATOR_URL, SEED_ENDPOINT, SEED_INPUT, middlewareClient } from "./helpers.mjs";

async function control(method, path, body) {
  const response = await fetch(`${EMULATOR_URL}/_emulator/${path}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} /_emulator/${path} -> ${response.status}`);
  return response.json();
}

const advance = (seconds) => control("POST", "clock", { advance: seconds });
const status = (fal, requestId) => fal.queue.status(SEED_ENDPOINT, { requestId });

describe("@fal-ai/client on one runner", () => {
  before(async () => {
    await control("POST", "reset");
    await control("PUT", "concurrency", { concurrency: 1 });
    await control("PUT", "policy", { policy: "timed:0,30" });
    await control("POST", "clock", { freeze: true });
  });
  after(() => control("POST", "reset"));

  it("the second request stays IN_QUEUE until the first completes", async () => {
    const fal = middlewareClient();
    const first = await fal.queue.submit(SEED_ENDPOINT, { input: SEED_INPUT });
    const second = await fal.queue.submit(SEED_ENDPOINT, { input: SEED_INPUT });
    assert.equal((await status(fal, first.request_id)).status, "IN_PROGRESS");
    assert.deepEqual(await status(fal, second.request_id).then(({ status, queue_position }) => [status, queue_position]), [
      "IN_QUEUE",
      0,
    ]);
    await advance(29.9);
    assert.equal((await status(fal, second.request_id)).status, "IN_QUEUE");
    await advance(0.1);
    assert.equal((await status(fal, first.request_id)).status, "COMPLETED");
    assert.equal((await status(fal, second.request_id)).status, "IN_PROGRESS");
    await advance(30);
    const result = await fal.queue.result(SEED_ENDPOINT, { requestId: second.request_id });
    assert.equal(result.data.video.content_type, "video/mp4");
  });

  it("a low-priority request waits behind normal ones", async () => {
    const fal = middlewareClient();
    const busy = await fal.queue.submit(SEED_ENDPOINT, { input: SEED_INPUT });
    const low = await fal.queue.submit(SEED_ENDPOINT, { input: SEED_INPUT, priority: "low" });
    const normal = await fal.queue.submit(SEED_ENDPOINT, { input: SEED_INPUT }); // the client sends `normal`
    assert.equal((await status(fal, normal.request_id)).queue_position, 0);
    assert.equal((await status(fal, low.request_id)).queue_position, 1);
    await advance(30);
    assert.equal((await status(fal, busy.request_id)).status, "COMPLETED");
    assert.equal((await status(fal, normal.request_id)).status, "IN_PROGRESS");
    const waiting = await status(fal, low.request_id);
    assert.deepEqual([waiting.status, waiting.queue_position], ["IN_QUEUE", 0]);
    await advance(30);
    assert.equal((await status(fal, low.request_id)).status, "IN_PROGRESS");
  });

  it("an invalid priority is a 400 request error, not silence", async () => {
    const fal = middlewareClient();
    await assert.rejects(fal.queue.submit(SEED_ENDPOINT, { input: SEED_INPUT, priority: "urgent" }), (error) => {
      assert.ok(error instanceof ApiError, String(error));
      assert.equal(error.status, 400);
      assert.equal(error.body.error_type, "bad_request");
      assert.match(error.body.detail, /X-Fal-Queue-Priority/);
      return true;
    });
  });
});
