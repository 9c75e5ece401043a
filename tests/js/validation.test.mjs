// Validation where fal does it, as @fal-ai/client sees it: the queue takes a bad input (a request id), the
// runner's 422 comes back from `queue.result` / `subscribe` as a ValidationError with pydantic's field
// errors, and a webhook says ERROR. Lax values (`"false"` for a boolean) are accepted and used.

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { describe, it } from "node:test";

import { ValidationError } from "@fal-ai/client";

import {
  POLL_INTERVAL,
  SEED_ENDPOINT,
  SEED_INPUT,
  assertVideo,
  middlewareClient,
  pollUntilCompleted,
  proxyClient,
} from "./helpers.mjs";

const { prompt: _prompt, ...NO_PROMPT } = SEED_INPUT;

function isMissingPrompt(error) {
  assert.ok(error instanceof ValidationError, String(error));
  assert.equal(error.status, 422);
  const [item] = error.getFieldErrors("prompt");
  assert.deepEqual(
    { type: item.type, loc: item.loc, msg: item.msg },
    { type: "missing", loc: ["body", "prompt"], msg: "Field required" },
  );
  assert.equal(item.url, undefined); // FastAPI sends pydantic's items without their url
  assert.match(error.requestId, /^[0-9a-f-]{36}$/);
  return true;
}

// A loopback webhook receiver: `delivered` resolves with the first payload it is sent (rejects after 10 s).
async function webhookReceiver() {
  let deliver;
  let timer;
  const delivered = new Promise((resolve, reject) => {
    deliver = resolve;
    timer = setTimeout(() => reject(new Error("no webhook within 10 s")), 10_000);
  });
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      response.end();
      deliver(JSON.parse(Buffer.concat(chunks).toString("utf8")));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const close = () => {
    clearTimeout(timer);
    server.close();
  };
  return { url: `http://127.0.0.1:${server.address().port}/hook`, delivered, close };
}

for (const [name, makeClient] of [
  ["requestMiddleware", middlewareClient],
  ["proxyUrl", proxyClient],
]) {
  describe(`validation in the runner through ${name}`, () => {
    it("a bad input gets a request id; the status completes without an error; the result is the 422", async () => {
      const fal = makeClient();
      const { request_id: requestId } = await fal.queue.submit(SEED_ENDPOINT, { input: NO_PROMPT });
      assert.match(requestId, /^[0-9a-f-]{36}$/);
      const seen = await pollUntilCompleted(fal, SEED_ENDPOINT, requestId);
      const completed = seen.at(-1);
      assert.equal(completed.error, undefined);
      assert.equal(completed.error_type, undefined);
      await assert.rejects(fal.queue.result(SEED_ENDPOINT, { requestId }), isMissingPrompt);
    });

    for (const mode of ["polling", "streaming"]) {
      it(`subscribe (${mode}) rejects with the ValidationError after COMPLETED`, async () => {
        const fal = makeClient();
        const updates = [];
        await assert.rejects(
          fal.subscribe(SEED_ENDPOINT, {
            input: NO_PROMPT,
            mode,
            pollInterval: POLL_INTERVAL,
            onQueueUpdate: (update) => updates.push(update.status),
          }),
          isMissingPrompt,
        );
        assert.equal(updates.at(-1), "COMPLETED");
      });
    }

    it("a bad input sends an ERROR webhook carrying the detail list", async () => {
      const fal = makeClient();
      const receiver = await webhookReceiver();
      try {
        const { request_id: requestId } = await fal.queue.submit(SEED_ENDPOINT, {
          input: NO_PROMPT,
          webhookUrl: receiver.url,
        });
        await pollUntilCompleted(fal, SEED_ENDPOINT, requestId); // under `polls:N`, polls move the request
        const payload = await receiver.delivered;
        assert.equal(payload.status, "ERROR");
        assert.equal(payload.request_id, requestId);
        assert.equal(payload.error, "Invalid status code: 422");
        assert.deepEqual(
          payload.payload.detail.map((item) => item.loc),
          [["body", "prompt"]],
        );
      } finally {
        receiver.close();
      }
    });

    it('lax values are accepted: "false" for generate_audio gives a silent clip', async () => {
      const fal = makeClient();
      const input = { ...SEED_INPUT, generate_audio: "false", seed: "42" };
      const result = await fal.subscribe(SEED_ENDPOINT, { input, pollInterval: POLL_INTERVAL });
      await assertVideo(result, "1280x720_8s_silent.mp4");
    });
  });
}
