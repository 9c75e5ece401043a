// @fal-ai/client pointed at the emulator with a requestMiddleware that rewrites fal's hosts.

import assert from "node:assert/strict";
import { it } from "node:test";

import { EMULATOR_URL, SEED_ENDPOINT, SEED_INPUT, middlewareClient, recordingFetch, toEmulator } from "./helpers.mjs";
import { clientSuite } from "./suite.mjs";

it("toEmulator rewrites fal's three hosts and nothing else", () => {
  assert.equal(toEmulator("https://queue.fal.run/fal-ai/veo3"), `${EMULATOR_URL}/fal-ai/veo3`);
  assert.equal(toEmulator("https://fal.run/fal-ai/veo3"), `${EMULATOR_URL}/run/fal-ai/veo3`);
  assert.equal(
    toEmulator("https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3"),
    `${EMULATOR_URL}/storage/upload/initiate?storage_type=fal-cdn-v3`,
  );
  assert.equal(toEmulator("https://example.com/a.png"), "https://example.com/a.png");
});

it("every call of a subscribe goes to the emulator, with the key", async () => {
  const recorder = recordingFetch();
  const fal = middlewareClient({ fetch: recorder.fetch });
  await fal.subscribe(SEED_ENDPOINT, { input: SEED_INPUT, pollInterval: 20 });
  const calls = recorder.calls.map(({ method, url }) => `${method} ${url.replace(EMULATOR_URL, "")}`);
  assert.equal(calls[0], `POST /${SEED_ENDPOINT}`);
  assert.match(calls.at(-1), /^GET \/fal-ai\/veo3\/requests\/[0-9a-f-]{36}$/);
  const polls = calls.slice(1, -1);
  assert.ok(polls.length >= 3, calls.join("\n")); // queued, running, completed (exactly 3 with `polls:1`)
  for (const poll of polls) assert.match(poll, /^GET \/fal-ai\/veo3\/requests\/[0-9a-f-]{36}\/status\?logs=0$/);
  for (const { url, headers } of recorder.calls) {
    assert.ok(url.startsWith(`${EMULATOR_URL}/`), url);
    assert.equal(headers.get("authorization"), "Key test-key");
  }
});

clientSuite("requestMiddleware", middlewareClient);
