// Every command, run as the built binary, with input a user gets wrong: the documented exit
// code, a message that names what to fix, and never a stack trace.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { REQUIRED_NODE_MAJOR } from "../../src/util/node-version.js";
import { runGitsync } from "./helpers.js";
import { ROOT } from "./setup.js";

/** A Node.js older than the one gitsync needs, as this kind of machine ships it (/usr/bin/node). */
function olderNode(): string {
  for (const candidate of ["/usr/bin/node", "/usr/local/bin/node", "/bin/node"]) {
    try {
      const version = execFileSync(candidate, ["--version"], { encoding: "utf8" }).trim();
      if (Number(/^v(\d+)/.exec(version)?.[1]) < REQUIRED_NODE_MAJOR) return candidate;
    } catch {
      // not installed there; try the next place
    }
  }
  throw new Error(`no Node.js older than ${REQUIRED_NODE_MAJOR} on this machine (looked in /usr/bin, /usr/local/bin, /bin)`);
}

describe("gitsync commands on bad input (the built binary)", () => {
  let dir: string;
  const plainEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME });

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "gitsync-cli-input-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function expectClean(result: { code: number; stdout: string; stderr: string }, code: number, message: RegExp): void {
    assert.equal(result.code, code, result.stderr + result.stdout);
    assert.match(result.stderr, message);
    assert.doesNotMatch(result.stderr + result.stdout, /\n\s+at .*\(?(node:|file:|\/)/, "no stack trace");
  }

  it("gitsync operator refuses an unknown flag with its usage (exit 2)", async () => {
    expectClean(
      await runGitsync(["operator", "--some-unknown-flag"], plainEnv()),
      2,
      /gitsync operator: Unknown option '--some-unknown-flag'[\s\S]*Usage: gitsync operator/,
    );
  });

  it("gitsync operator refuses a lease duration that is no duration, naming the flag (exit 2)", async () => {
    expectClean(await runGitsync(["operator", "--lease-duration", "forever"], plainEnv()), 2, /--lease-duration: invalid duration "forever"/);
  });

  it("says which Node.js gitsync needs, and how to get it, when run on an older one", () => {
    const node = olderNode();
    let result: { code: number; stdout: string; stderr: string };
    try {
      const stdout = execFileSync(node, [path.join(ROOT, "dist/src/main.js"), "backup", "sync"], { encoding: "utf8", stdio: "pipe" });
      result = { code: 0, stdout, stderr: "" };
    } catch (err) {
      const e = err as { status: number; stdout: string; stderr: string };
      result = { code: e.status, stdout: e.stdout, stderr: e.stderr };
    }
    expectClean(result, 2, new RegExp(`gitsync needs Node\\.js ${REQUIRED_NODE_MAJOR} or newer; this is Node\\.js 2?\\d\\.[\\s\\S]*npm ci`));
  });

  it("gitsync backup sync fails at once on an unparseable MINIO_ENDPOINT, naming the variable (exit 2)", async () => {
    const env = { ...plainEnv(), MINIO_ENDPOINT: "::::", MINIO_ACCESS_KEY: "a", MINIO_SECRET_KEY: "secret-value-1", WORK_DIR: path.join(dir, "mirror") };
    expectClean(await runGitsync(["backup", "sync"], env), 2, /MINIO_ENDPOINT: "::::" is not an S3 endpoint/);
  });

  it("gitsync handshake check refuses a service whose version is banana (exit 2)", async () => {
    const service = path.join(dir, "banana");
    mkdirSync(service);
    writeFileSync(path.join(service, "service.yaml"), "metadata: {name: banana, version: banana}\n");
    expectClean(await runGitsync(["handshake", "check", service], plainEnv()), 2, /service\.yaml: metadata\.version: "banana" is not a version/);
  });

  it("gitsync partition produce names the field of a desired-state file whose apps_v1 is a mapping (exit 2)", async () => {
    const file = path.join(dir, "desired.yaml");
    writeFileSync(file, "apps_v1:\n  shop:\n    codeComponents: []\n");
    const env = {
      ...plainEnv(),
      AWS_ACCESS_KEY_ID: "a",
      AWS_SECRET_ACCESS_KEY: "secret-value-2",
      AWS_S3_BUCKET: "b",
      AWS_ENDPOINT_URL: "http://127.0.0.1:9",
      GITLAB_BASE_URL: "http://127.0.0.1:9",
      PUBLIC_KEY: "age1qqqq",
      WORKDIR: dir,
    };
    expectClean(await runGitsync(["partition", "produce", "--desired-state", file], env), 2, /desired\.yaml: apps_v1: /);
  });

  it("gitsync with an unknown command prints its usage (exit 2)", async () => {
    expectClean(await runGitsync(["restore"], plainEnv()), 2, /unknown command "restore"/);
  });
});
