// One subscribe through @fal-ai/client 1.10.1, printed as JSON for tests/test_record_replay.py: the statuses the
// client saw (onQueueUpdate), the last logs it was given, and the output. Not a node test file (no `.test.`):
// the Python test runs it against a recorder and then against a replaying emulator, and compares the two.
//
//   EMULATOR_URL=http://127.0.0.1:8470 node record_replay.mjs ENDPOINT_ID '{"prompt": "..."}'

import { middlewareClient } from "./helpers.mjs";

const [endpointId, input] = process.argv.slice(2);
const fal = middlewareClient();
const statuses = [];
let logs = [];
const result = await fal.subscribe(endpointId, {
  input: JSON.parse(input),
  logs: true,
  pollInterval: 100,
  onQueueUpdate: (update) => {
    statuses.push(update.status);
    if (Array.isArray(update.logs)) logs = update.logs;
  },
});
console.log(JSON.stringify({ statuses, logs, data: result.data }));
