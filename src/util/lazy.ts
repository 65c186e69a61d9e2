// Dependencies loaded on first use. A process that never reaches the code needing one never
// holds it: every operator process loads every controller, but most clusters run two or three
// of the five kinds, and few read a repository over SSH. `require` loads ES modules as well
// (Node.js 22.12 and later) and does so synchronously, so callers stay as they were.
// The figures: what each would add to the RSS of every operator process, measured one by one
// on top of the modules every process loads, with the chart's Node.js options. The adapters
// declare their own (ssh2 in git/ssh.ts, aws4 and fast-xml-parser in s3/bucket.ts).

import { createRequire } from "node:module";

const load = createRequire(import.meta.url);

/** The module `id`, required the first time the returned function is called. */
export function onFirstUse<T>(id: string): () => T {
  let module: T | undefined;
  return () => (module ??= load(id) as T);
}

/** age and the post-quantum and curve libraries it brings, for PartitionSync, backup and compose encryption: about 5 MiB. */
export const age = onFirstUse<typeof import("age-encryption")>("age-encryption");
/** tar, for PartitionSync's wire format: about 2 MiB. */
export const tar = onFirstUse<typeof import("tar")>("tar");
/** ajv, for ComposeDeployment's schema: about 2 MiB. */
export const ajv2020 = onFirstUse<typeof import("ajv/dist/2020.js")>("ajv/dist/2020.js");
/** cron-parser and luxon, for ClusterBackupSync's schedule: about 1.5 MiB. */
export const cronParser = onFirstUse<typeof import("cron-parser")>("cron-parser");
