// @fal-ai/client in proxy mode: every call goes to one URL with the real target in `x-fal-target-url`,
// as with fal's server proxy (@fal-ai/server-proxy); the emulator routes on that header.

import assert from "node:assert/strict";
import { it } from "node:test";

import { EMULATOR_URL, PROXY_URL, SEED_ENDPOINT, SEED_INPUT, proxyClient, recordingFetch } from "./helpers.mjs";
import { clientSuite } from "./suite.mjs";

it("every client call goes to the proxy URL, naming fal's real URL in x-fal-target-url", async () => {
  const recorder = recordingFetch();
  const fal = proxyClient({ fetch: recorder.fetch });
  await fal.subscribe(SEED_ENDPOINT, { input: SEED_INPUT, pollInterval: 20 });
  const upload = await fal.storage.upload(new Blob(["hello"], { type: "text/plain" }));

  const targets = recorder.calls.map(({ method, url, headers }) => [method, url, headers.get("x-fal-target-url")]);
  const [submit, ...rest] = targets;
  assert.deepEqual(submit, ["POST", PROXY_URL, `https://queue.fal.run/${SEED_ENDPOINT}`]);
  const initiate = rest.findIndex(([, , target]) => target?.startsWith("https://rest.fal.ai/"));
  assert.ok(initiate > 0, JSON.stringify(targets, null, 1));
  for (const [method, url, target] of rest.slice(0, initiate)) {
    assert.equal(method, "GET");
    assert.equal(url, PROXY_URL);
    assert.match(target, /^https:\/\/queue\.fal\.run\/fal-ai\/veo3\/requests\/[0-9a-f-]{36}(\/status\?logs=0)?$/);
  }
  assert.deepEqual(rest[initiate], [
    "POST",
    PROXY_URL,
    "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3",
  ]);
  // The upload itself is a plain PUT to the `upload_url` the emulator gave, not through the proxy.
  const [put] = rest.slice(initiate + 1);
  assert.equal(put[0], "PUT");
  assert.ok(put[1].startsWith(`${EMULATOR_URL}/`), put[1]);
  assert.equal(put[2], null);
  assert.equal(rest.length, initiate + 2);
  assert.equal(await (await fetch(upload)).text(), "hello");
});

it("without x-fal-target-url the proxy path is no endpoint (the header does the routing)", async () => {
  const response = await fetch(PROXY_URL, {
    method: "POST",
    headers: { Authorization: "Key test-key", "Content-Type": "application/json" },
    body: JSON.stringify(SEED_INPUT),
  });
  assert.equal(response.status, 404);
});

clientSuite("proxyUrl", proxyClient);
