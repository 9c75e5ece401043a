// The flows an app drives through @fal-ai/client, run once per set-up (requestMiddleware, proxyUrl):
// subscribe (polling and streaming), queue submit/status/result/cancel, run, storage.upload.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ApiError, ValidationError } from "@fal-ai/client";

import {
  EMULATOR_URL,
  POLL_INTERVAL,
  PORTRAIT_PNG,
  SCENARIO_HEADER,
  SEED_ENDPOINT,
  SEED_INPUT,
  assertVideo,
  download,
  pollUntilCompleted,
  statusesOf,
} from "./helpers.mjs";

const FAST_I2V = "fal-ai/veo3.1/fast/image-to-video";
const PORTRAIT_FILE_NAME = "720x1280_8s_audio.mp4"; // `auto` follows the 720x1280 input image

function assertLogs(logs) {
  assert.ok(Array.isArray(logs) && logs.length > 0, `runner logs: ${JSON.stringify(logs)}`);
  for (const log of logs) {
    assert.equal(typeof log.message, "string");
    assert.equal(typeof log.timestamp, "string");
  }
}

export function clientSuite(name, makeClient) {
  describe(`@fal-ai/client through ${name}`, () => {
    it("subscribe (polling) sees IN_QUEUE, IN_PROGRESS with logs, COMPLETED, then the video", async () => {
      const fal = makeClient();
      const updates = [];
      const enqueued = [];
      const result = await fal.subscribe(SEED_ENDPOINT, {
        input: SEED_INPUT,
        logs: true,
        pollInterval: POLL_INTERVAL,
        onEnqueue: (requestId) => enqueued.push(requestId),
        onQueueUpdate: (update) => updates.push(update),
      });
      assert.deepEqual(statusesOf(updates), ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]);
      assertLogs(updates.find((update) => update.status === "IN_PROGRESS").logs);
      assert.equal(typeof updates[0].queue_position, "number");
      assert.deepEqual(enqueued, [result.requestId]);
      for (const update of updates) assert.equal(update.request_id, result.requestId);
      await assertVideo(result);
    });

    it("subscribe (streaming) reads the status SSE stream, then the video", async () => {
      const fal = makeClient();
      const updates = [];
      const result = await fal.subscribe(SEED_ENDPOINT, {
        input: SEED_INPUT,
        logs: true,
        mode: "streaming",
        onQueueUpdate: (update) => updates.push(structuredClone(update)),
      });
      assert.deepEqual(statusesOf(updates), ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]);
      assertLogs(updates.find((update) => update.status === "IN_PROGRESS").logs);
      assertLogs(updates.at(-1).logs);
      await assertVideo(result);
    });

    it("subscribe (streaming) ends with the same log list as polling", async () => {
      // The client appends each event's `logs` to what it holds, so each event must carry only new lines.
      const fal = makeClient();
      const streamed = [];
      const streamedResult = await fal.subscribe(SEED_ENDPOINT, {
        input: SEED_INPUT,
        logs: true,
        mode: "streaming",
        onQueueUpdate: (update) => streamed.push(structuredClone(update)),
      });
      const polled = [];
      await fal.subscribe(SEED_ENDPOINT, {
        input: SEED_INPUT,
        logs: true,
        pollInterval: POLL_INTERVAL,
        onQueueUpdate: (update) => polled.push(update),
      });
      const streamedLogs = streamed.at(-1).logs;
      const polledLogs = polled.at(-1).logs;
      assertLogs(streamedLogs);
      assert.deepEqual(
        streamedLogs.map((log) => log.message),
        polledLogs.map((log) => log.message),
      );
      assert.equal(new Set(streamedLogs.map((log) => log.message)).size, streamedLogs.length, "no line twice");
      // And exactly the list a poll of the same request shows, timestamps included.
      const status = await fal.queue.status(SEED_ENDPOINT, { requestId: streamedResult.requestId, logs: true });
      assert.deepEqual(streamedLogs, status.logs);
    });

    it("queue.streamStatus yields each status and resolves done() with COMPLETED", async () => {
      const fal = makeClient();
      const { request_id: requestId } = await fal.queue.submit(SEED_ENDPOINT, { input: SEED_INPUT });
      const stream = await fal.queue.streamStatus(SEED_ENDPOINT, { requestId, logs: true });
      const seen = [];
      const lines = [];
      for await (const event of stream) {
        seen.push(event.status);
        if (Array.isArray(event.logs)) lines.push(...event.logs);
      }
      const done = await stream.done();
      assert.equal(done.status, "COMPLETED");
      // Each event's logs are the lines new since the event before: together, the list a poll shows.
      const polled = await fal.queue.status(SEED_ENDPOINT, { requestId, logs: true });
      assertLogs(lines);
      assert.deepEqual(lines, polled.logs);
      assert.deepEqual(
        seen.filter((status, i) => status !== seen[i - 1]),
        ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"],
      );
      assert.equal(stream.requestId, requestId);
    });

    it("queue.submit / status (with logs) / result", async () => {
      const fal = makeClient();
      const submitted = await fal.queue.submit(SEED_ENDPOINT, { input: SEED_INPUT });
      assert.equal(submitted.status, "IN_QUEUE");
      assert.match(submitted.request_id, /^[0-9a-f-]{36}$/);
      for (const key of ["response_url", "status_url", "cancel_url"]) {
        assert.equal(typeof submitted[key], "string", key);
      }
      const seen = await pollUntilCompleted(fal, SEED_ENDPOINT, submitted.request_id, { logs: true });
      assert.deepEqual(statusesOf(seen), ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]);
      assertLogs(seen.find((status) => status.status === "IN_PROGRESS").logs);
      const completed = seen.at(-1);
      assertLogs(completed.logs);
      assert.equal(typeof completed.metrics.inference_time, "number");
      assert.equal(completed.error, undefined);

      const withoutLogs = await fal.queue.status(SEED_ENDPOINT, { requestId: submitted.request_id });
      assert.equal(withoutLogs.logs, null);

      const result = await fal.queue.result(SEED_ENDPOINT, { requestId: submitted.request_id });
      assert.equal(result.requestId, submitted.request_id);
      await assertVideo(result);
    });

    it("queue.cancel of a queued request: status COMPLETED + client_cancelled, result is a 499", async () => {
      const fal = makeClient();
      // `manual`: the request stays IN_QUEUE until told otherwise.
      const { request_id: requestId } = await fal.queue.submit(SEED_ENDPOINT, {
        input: SEED_INPUT,
        headers: { [SCENARIO_HEADER]: "manual" },
      });
      for (let i = 0; i < 3; i++) {
        const status = await fal.queue.status(SEED_ENDPOINT, { requestId });
        assert.equal(status.status, "IN_QUEUE");
      }
      assert.equal(await fal.queue.cancel(SEED_ENDPOINT, { requestId }), undefined);

      const status = await fal.queue.status(SEED_ENDPOINT, { requestId, logs: true });
      assert.equal(status.status, "COMPLETED");
      assert.equal(status.error_type, "client_cancelled");
      assert.equal(typeof status.error, "string");

      await assert.rejects(fal.queue.result(SEED_ENDPOINT, { requestId }), (error) => {
        assert.ok(error instanceof ApiError, String(error));
        assert.equal(error.status, 499);
        assert.equal(error.body.error_type, "client_cancelled");
        assert.equal(error.requestId, requestId);
        return true;
      });
      // A second cancel: fal answers 400 ALREADY_COMPLETED, which the client throws.
      await assert.rejects(fal.queue.cancel(SEED_ENDPOINT, { requestId }), (error) => {
        assert.ok(error instanceof ApiError, String(error));
        assert.equal(error.status, 400);
        assert.deepEqual(error.body, { status: "ALREADY_COMPLETED" });
        return true;
      });
    });

    it("run (synchronous, fal.run) returns the output and the request id", async () => {
      const fal = makeClient();
      const result = await fal.run(SEED_ENDPOINT, { input: SEED_INPUT });
      await assertVideo(result);
    });

    it("stream (fal.stream, POST {endpoint}/stream on the run host): the output is the one event and done()", async () => {
      const fal = makeClient();
      const stream = await fal.stream(SEED_ENDPOINT, { input: SEED_INPUT });
      const events = [];
      for await (const event of stream) events.push(event);
      const output = await stream.done();
      assert.equal(events.length, 1);
      assert.deepEqual(events[0], output);
      assert.match(stream.requestId, /^[0-9a-f-]{36}$/);
      await assertVideo({ data: output, requestId: stream.requestId });
    });

    it("stream of a bad input rejects done() with a ValidationError, as fal.run would", async () => {
      const fal = makeClient();
      const { prompt, ...input } = SEED_INPUT;
      assert.ok(prompt);
      const stream = await fal.stream(SEED_ENDPOINT, { input });
      await assert.rejects(stream.done(), (error) => {
        assert.ok(error instanceof ValidationError, String(error));
        assert.equal(error.status, 422);
        assert.deepEqual(error.fieldErrors[0].loc, ["body", "prompt"]);
        return true;
      });
    });

    it("storage.upload of a Blob: the URL serves the bytes back and works as image_url", async () => {
      const fal = makeClient();
      const url = await fal.storage.upload(new Blob([PORTRAIT_PNG], { type: "image/png" }));
      assert.ok(url.startsWith(`${EMULATOR_URL}/`), `${url} is served by the emulator`);
      const { response, bytes } = await download(url);
      assert.equal(response.headers.get("content-type"), "image/png");
      assert.ok(bytes.equals(PORTRAIT_PNG), "the uploaded bytes come back unchanged");

      const result = await fal.subscribe(FAST_I2V, {
        input: { prompt: "A lighthouse at dusk, waves rolling in", image_url: url, aspect_ratio: "auto" },
        pollInterval: POLL_INTERVAL,
      });
      await assertVideo(result, PORTRAIT_FILE_NAME);
    });

    it("a Blob in the input is uploaded by the client before submit", async () => {
      const fal = makeClient();
      const { request_id: requestId } = await fal.queue.submit(FAST_I2V, {
        input: {
          prompt: "A lighthouse at dusk, waves rolling in",
          image_url: new Blob([PORTRAIT_PNG], { type: "image/png" }),
          aspect_ratio: "auto",
        },
      });
      await pollUntilCompleted(fal, FAST_I2V, requestId, { logs: false });
      const result = await fal.queue.result(FAST_I2V, { requestId });
      await assertVideo(result, PORTRAIT_FILE_NAME);
    });
  });
}
