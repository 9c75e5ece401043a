// Drive one unmodified @fal-ai/client release against the emulator; one JSON line per operation.
//
// Run by tests/client_matrix.py from a copy of this file inside that release's own folder (so that
// "@fal-ai/client" resolves to it), with EMULATOR_URL (the plain-HTTP base) and the recipe in argv[2]:
//   middleware  a requestMiddleware that rewrites fal's hosts, rest.alpha.fal.ai included (releases up to
//               1.9 upload through it)
//   proxyUrl    every call to one URL with the real target in x-fal-target-url. Releases before 1.10 take
//               proxyUrl as a plain string and apply it only where `window` exists (browsers), so for them
//               this defines `window` first.
// It asserts what a user relies on: statuses that end COMPLETED, a video URL that downloads an MP4, an
// upload URL that serves the bytes and works as an input.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { deflateSync } from "node:zlib";

const EMU = process.env.EMULATOR_URL.replace(/\/+$/, "");
const RECIPE = process.argv[2];
const VERSION = JSON.parse(readFileSync(new URL("./node_modules/@fal-ai/client/package.json", import.meta.url))).version;
const [MAJOR, MINOR] = VERSION.split(".").map(Number);
const LEGACY_PROXY = MAJOR === 1 && MINOR < 10; // proxyUrl is a plain string, applied only where `window` exists
if (RECIPE === "proxyUrl" && LEGACY_PROXY) globalThis.window = globalThis;
const { createFalClient } = await import("@fal-ai/client");

const I2V = "fal-ai/veo3/image-to-video";
const T2V = "fal-ai/veo3";
const HELD = "fal-ai/veo3/fast"; // the harness holds requests to this endpoint IN_QUEUE (policy `manual`)
const ARGS = { prompt: "A lego chef cooks eggs", image_url: "https://example.com/chef.png" };

// The README's recipe: fal's hosts -> the emulator (the synchronous API lives under /run).
const toEmulator = (url) =>
  url
    .replace(/^https:\/\/queue\.fal\.run(?=[/?]|$)/, EMU)
    .replace(/^https:\/\/fal\.run(?=[/?]|$)/, `${EMU}/run`)
    .replace(/^https:\/\/rest\.(alpha\.)?fal\.ai(?=[/?]|$)/, EMU);

const fal =
  RECIPE === "middleware"
    ? createFalClient({ credentials: "k", requestMiddleware: async (req) => ({ ...req, url: toEmulator(req.url) }) })
    : createFalClient({ credentials: "k", proxyUrl: LEGACY_PROXY ? `${EMU}/api/fal/proxy` : { url: `${EMU}/api/fal/proxy`, when: "always" } });

async function download(url) {
  assert.ok(url.startsWith(`${EMU}/`), url);
  const response = await fetch(url);
  assert.equal(response.status, 200, url);
  return Buffer.from(await response.arrayBuffer());
}

async function assertVideo(data, name) {
  const video = data.video;
  const bytes = await download(video.url);
  assert.equal(bytes.subarray(4, 8).toString("latin1"), "ftyp");
  assert.equal(bytes.length, video.file_size);
  if (name) assert.equal(video.file_name, name);
  return video.url;
}

const distinct = (names) => names.filter((name, i) => name !== names[i - 1]);

async function subscribe() {
  const seen = [];
  const result = await fal.subscribe(I2V, { input: ARGS, logs: true, pollInterval: 20, onQueueUpdate: (u) => seen.push(u.status) });
  assert.equal(seen.at(-1), "COMPLETED", seen.join());
  return `${distinct(seen).join(" → ")}; ${await assertVideo(result.data)}`;
}

async function queue() {
  const { request_id: requestId } = await fal.queue.submit(T2V, { input: { prompt: "p" } });
  const seen = [];
  for (let i = 0; i < 100 && seen.at(-1) !== "COMPLETED"; i++) {
    seen.push((await fal.queue.status(T2V, { requestId, logs: true })).status);
  }
  assert.equal(seen.at(-1), "COMPLETED", seen.join());
  await assertVideo((await fal.queue.result(T2V, { requestId })).data);
  const held = await fal.queue.submit(HELD, { input: { prompt: "p" } });
  assert.equal((await fal.queue.status(HELD, { requestId: held.request_id })).status, "IN_QUEUE");
  await fal.queue.cancel(HELD, { requestId: held.request_id });
  const after = (await fal.queue.status(HELD, { requestId: held.request_id })).status;
  assert.equal(after, "COMPLETED"); // a cancelled request never runs: it completes with client_cancelled
  return `${distinct(seen).join(" → ")}; cancel: IN_QUEUE → ${after}`;
}

async function run() {
  return assertVideo((await fal.run(T2V, { input: { prompt: "p" } })).data);
}

// A valid 8-bit RGB PNG of width x height, one colour.
function png(width, height) {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes) => {
    let c = 0xffffffff;
    for (const byte of bytes) c = table[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "latin1");
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc((1 + width * 3) * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set([40, 90, 200], y * (1 + width * 3) + 1 + x * 3);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk("IHDR", header), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

async function upload() {
  const bytes = png(720, 1280);
  const url = await fal.storage.upload(new Blob([bytes], { type: "image/png" }));
  assert.deepEqual(await download(url), bytes);
  // an uploaded image is an input: `auto` follows its portrait shape
  const result = await fal.subscribe(I2V, { input: { ...ARGS, image_url: url, aspect_ratio: "auto" }, pollInterval: 20 });
  await assertVideo(result.data, "720x1280_8s_audio.mp4");
  return `storage.upload: ${url}`;
}

console.log(JSON.stringify({ op: "version", ok: true, detail: VERSION }));
for (const [name, operation] of Object.entries({ subscribe, queue, run, upload })) {
  try {
    console.log(JSON.stringify({ op: name, ok: true, detail: await operation() }));
  } catch (error) {
    console.error(error);
    console.log(JSON.stringify({ op: name, ok: false, detail: `${error?.name}: ${error?.message}`.slice(0, 300) }));
  }
}
