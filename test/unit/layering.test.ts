// The layering of ARCHITECTURE.md is enforced by lint: an import against the direction fails
// `make lint`. Each case lints a one-line source as if it were a file at that path.

import assert from "node:assert/strict";
import path from "node:path";
import { ESLint } from "eslint";

const ROOT = path.resolve(import.meta.dirname, "../../..");

async function importErrors(file: string, source: string): Promise<string[]> {
  const eslint = new ESLint({
    cwd: ROOT,
    // Only the import rules: the typed rules need a real file in the TypeScript project.
    ruleFilter: ({ ruleId }) => ruleId === "no-restricted-imports",
    overrideConfig: { languageOptions: { parserOptions: { projectService: false, project: null } } },
  });
  const [result] = await eslint.lintText(source, { filePath: path.join(ROOT, file) });
  return (result?.messages ?? []).map((m) => m.message);
}

describe("layering, enforced by lint", function () {
  this.timeout(30_000);

  const forbidden: [string, string, RegExp][] = [
    ["a controller importing the CLI", "src/controllers/servicehandshake/x.ts", /must not import cli/],
    ["a controller importing another kind's folder", "src/controllers/servicehandshake/x.ts", /another kind's folder/],
    ["the runtime importing the git adapter", "src/runtime/x.ts", /must not import .*git/],
    ["the runtime importing isomorphic-git", "src/runtime/x.ts", /only adapters talk/],
    ["a domain module importing the runtime", "src/handshake/x.ts", /must not import .*runtime/],
    ["a domain module importing an adapter", "src/backup/x.ts", /must not import .*s3/],
    ["a domain module importing the S3 client", "src/backup/x.ts", /only adapters talk/],
    ["an adapter importing the runtime", "src/git/x.ts", /must not import .*runtime/],
    ["a shared helper importing the runtime", "src/util/x.ts", /must not import .*runtime/],
  ];
  const sources: Record<string, string> = {
    "a controller importing the CLI": 'import { runHandshake } from "../../cli/handshake.js";\nvoid runHandshake;\n',
    "a controller importing another kind's folder":
      'import { clusterBackupSyncController } from "../clusterbackupsync/controller.js";\nvoid clusterBackupSyncController;\n',
    "the runtime importing the git adapter": 'import { GitRepository } from "../git/repo.js";\nvoid GitRepository;\n',
    "the runtime importing isomorphic-git": 'import git from "isomorphic-git";\nvoid git;\n',
    "a domain module importing the runtime": 'import { stall } from "../runtime/errors.js";\nvoid stall;\n',
    "a domain module importing an adapter": 'import { Bucket } from "../s3/bucket.js";\nvoid Bucket;\n',
    "a domain module importing the S3 client": 'import { S3Client } from "@aws-sdk/client-s3";\nvoid S3Client;\n',
    "an adapter importing the runtime": 'import { readSecret } from "../runtime/secrets.js";\nvoid readSecret;\n',
    "a shared helper importing the runtime": 'import { KubeClient } from "../runtime/kube.js";\nvoid KubeClient;\n',
  };
  for (const [name, file, expected] of forbidden) {
    it(`fails ${name}`, async () => {
      const errors = await importErrors(file, sources[name] ?? "");
      assert.ok(
        errors.some((e) => expected.test(e)),
        `${file}: ${errors.join("; ") || "no error"}`,
      );
    });
  }

  const allowed: [string, string, string][] = [
    [
      "a controller importing the runtime and its own kind's API",
      "src/controllers/servicehandshake/x.ts",
      'import { stall } from "../../runtime/errors.js";\nimport { serviceHandshakeKind } from "../../crds/servicehandshake.js";\nimport type { ControllerDeps } from "../deps.js";\nvoid stall; void serviceHandshakeKind;\nexport type D = ControllerDeps;\n',
    ],
    [
      "an engine importing domain and adapters",
      "src/engines/x.ts",
      'import { planSync } from "../backup/plan.js";\nimport { Bucket } from "../s3/bucket.js";\nvoid planSync; void Bucket;\n',
    ],
    ["a domain module importing a shared helper", "src/handshake/x.ts", 'import { trimSlashes } from "../util/paths.js";\nvoid trimSlashes;\n'],
  ];
  for (const [name, file, source] of allowed) {
    it(`allows ${name}`, async () => {
      assert.deepEqual(await importErrors(file, source), []);
    });
  }
});
