// Shared by the node tests: where the emulator is, the two ways to point @fal-ai/client at it, the
// seed request, a tiny PNG writer and checks on the returned MP4.
//
// The emulator is started by tests/test_js_client.py, which passes its plain-HTTP URL in
// EMULATOR_URL (e.g. http://127.0.0.1:8470). By hand: `./scripts/serve` in one shell, then
// `EMULATOR_URL=http://127.0.0.1:8470 npm test` here. Any policy works; `polls:1`, which the
// pytest run uses, is the fastest (about 1 s a file; the default timing takes about 45 s).
// The name is not FAL_EMULATOR_URL on purpose: the emulator refuses to start when an unknown
// FAL_EMULATOR_* variable is set, and this one would often be exported in the same shell.

import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";

import { createFalClient } from "@fal-ai/client";

export const EMULATOR_URL = (() => {
  const url = process.env.EMULATOR_URL;
  if (!url) {
    throw new Error("Set EMULATOR_URL to a running fal-emulator (tests/test_js_client.py does it)");
  }
  return url.replace(/\/+$/, "");
})();

export const CREDENTIALS = "test-key";
export const SCENARIO_HEADER = "X-Fal-Emulator-Scenario";
export const POLL_INTERVAL = 50; // ms; the emulator runs with `polls:1`, so a request completes in 3 polls

// fal's three hosts -> the emulator (the synchronous `fal.run` API lives under `/run`).
export function toEmulator(url) {
  return url
    .replace(/^https:\/\/queue\.fal\.run(?=[/?]|$)/, EMULATOR_URL)
    .replace(/^https:\/\/fal\.run(?=[/?]|$)/, `${EMULATOR_URL}/run`)
    .replace(/^https:\/\/rest\.fal\.ai(?=[/?]|$)/, EMULATOR_URL);
}

// Set-up 1: a requestMiddleware that rewrites every URL the client builds.
export function middlewareClient(extra = {}) {
  return createFalClient({
    credentials: CREDENTIALS,
    requestMiddleware: async (request) => ({ ...request, url: toEmulator(request.url) }),
    ...extra,
  });
}

// Set-up 2: proxy mode; every call goes to one URL with the real target in `x-fal-target-url`.
export const PROXY_URL = `${EMULATOR_URL}/api/fal/proxy`;

export function proxyClient(extra = {}) {
  return createFalClient({
    credentials: CREDENTIALS,
    proxyUrl: { url: PROXY_URL, when: "always" }, // a plain string applies only in browsers
    ...extra,
  });
}

// A `fetch` that notes each call's method, URL and headers, then does it (the client's `fetch` option).
export function recordingFetch() {
  const calls = [];
  const record = async (url, init = {}) => {
    const headers = new Headers(init.headers ?? {});
    calls.push({ method: (init.method ?? "GET").toUpperCase(), url: String(url), headers });
    return fetch(url, init);
  };
  return { calls, fetch: record };
}

// The first seed request of the README (fal's own example for fal-ai/veo3/image-to-video).
export const SEED_ENDPOINT = "fal-ai/veo3/image-to-video";
export const SEED_INPUT = Object.freeze({
  prompt:
    'A woman looks into the camera, breathes in, then exclaims energetically, "have you guys checked out ' +
    "Veo3 Image-to-Video on Fal? It's incredible!\"",
  image_url: "https://storage.googleapis.com/falserverless/example_inputs/veo3-i2v-input.png",
  aspect_ratio: "auto",
  duration: "8s",
  generate_audio: true,
  resolution: "720p",
});
export const SEED_FILE_NAME = "1280x720_8s_audio.mp4";

// ---- PNG ---------------------------------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

// A valid 8-bit RGB PNG of width x height: a vertical gradient (compresses to a few KB).
export function png(width, height) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type RGB, deflate, filter 0, no interlace
  const row = 1 + width * 3;
  const raw = Buffer.alloc(row * height);
  for (let y = 0; y < height; y++) {
    const shade = Math.round((255 * y) / Math.max(1, height - 1));
    for (let x = 0; x < width; x++) raw.set([shade, 96, 255 - shade], y * row + 1 + x * 3);
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// Portrait, and at least 720 px on each side so no minimum-size rule can refuse it.
export const PORTRAIT_PNG = png(720, 1280);

// ---- checks ------------------------------------------------------------------------------------

export async function download(url) {
  const response = await fetch(url);
  assert.equal(response.status, 200, `GET ${url}`);
  return { response, bytes: Buffer.from(await response.arrayBuffer()) };
}

// `result.data.video` is fal's File object, served by the emulator: a real MP4 of `file_size` bytes.
export async function assertVideo(result, fileName = SEED_FILE_NAME) {
  assert.equal(typeof result.requestId, "string");
  assert.ok(result.requestId.length > 0, "requestId comes from x-fal-request-id");
  const video = result.data.video;
  assert.equal(video.content_type, "video/mp4");
  assert.equal(video.file_name, fileName);
  assert.equal(typeof video.file_size, "number");
  assert.ok(video.url.startsWith(`${EMULATOR_URL}/`), `${video.url} is served by the emulator`);
  const { response, bytes } = await download(video.url);
  assert.equal(response.headers.get("content-type"), "video/mp4");
  assert.equal(bytes.length, video.file_size);
  assert.equal(bytes.subarray(4, 8).toString("latin1"), "ftyp");
  return video;
}

// What `onQueueUpdate` saw, in order, without repeats: e.g. ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].
export function statusesOf(updates) {
  return updates.map((update) => update.status).filter((status, i, all) => status !== all[i - 1]);
}

// Poll `queue.status` (as an app would) until COMPLETED; returns every status seen.
export async function pollUntilCompleted(fal, endpointId, requestId, { logs = true, limit = 50 } = {}) {
  const seen = [];
  for (let i = 0; i < limit; i++) {
    const status = await fal.queue.status(endpointId, { requestId, logs });
    seen.push(status);
    if (status.status === "COMPLETED") return seen;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL));
  }
  throw new Error(`${requestId} not COMPLETED after ${limit} polls: ${JSON.stringify(seen.at(-1))}`);
}
