// The input types @fal-ai/client ships for fal's endpoints (src/types/endpoints.d.ts), as JSON Schema.
//
//   node client_types.mjs fal-ai/veo3 fal-ai/veo3.1/fast ...
//
// prints {"version": "<client version>", "inputs": {"<endpoint id>": <JSON Schema of its input type> | null}}:
// null for an id the client's EndpointTypeMap does not have. The TypeScript is read by ts-json-schema-generator
// (the TypeScript compiler's own parser); nothing here parses it. Run by tests/test_client_types.py.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { createGenerator } from "ts-json-schema-generator";

const clientDir = fileURLToPath(new URL("./node_modules/@fal-ai/client/", import.meta.url));
const types = join(clientDir, "src", "types", "endpoints");
const { version } = JSON.parse(readFileSync(join(clientDir, "package.json"), "utf8"));

const wanted = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), "fal-client-types-"));
const path = join(dir, "entry.ts");
writeFileSync(
  path,
  [
    `import type { EndpointTypeMap } from ${JSON.stringify(types)};`,
    `type Wanted = ${wanted.map((id) => JSON.stringify(id)).join(" | ") || "never"};`,
    `export type Inputs = { [K in Extract<Wanted, keyof EndpointTypeMap>]: EndpointTypeMap[K]["input"] };`,
    "",
  ].join("\n"),
);
let schema;
try {
  const config = { path, skipTypeCheck: true, expose: "none", topRef: false, additionalProperties: true };
  schema = createGenerator(config).createSchema("Inputs");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const inputs = Object.fromEntries(wanted.map((id) => [id, schema.properties?.[id] ?? null]));
process.stdout.write(JSON.stringify({ version, inputs }));
