// Every command, run as the built binary, with input a user gets wrong: the documented exit
// code, a message that names what to fix, and never a stack trace.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { generateIdentity } from "age-encryption";
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

  /** A hostile-input corpus, per command: the documented exit code, a message naming what to fix, no stack trace, an end within the test's time. */
  describe("a corpus of hostile input", () => {
    let identity = "";
    before(async () => (identity = await generateIdentity()));
    const bomb = ["a: &a [x, x]", "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]", "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]"]
      .concat(["d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]", "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]", "metadata: {name: *e}"])
      .join("\n");
    const garbage = Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7919 + 13) % 256));
    const s3Env = { MINIO_ENDPOINT: "127.0.0.1:9", MINIO_ACCESS_KEY: "a", MINIO_SECRET_KEY: "secret-value-3", RETRY_ATTEMPTS: "1" };
    const partitionEnv = {
      AWS_ACCESS_KEY_ID: "a",
      AWS_SECRET_ACCESS_KEY: "secret-value-4",
      AWS_S3_BUCKET: "b",
      AWS_ENDPOINT_URL: "http://127.0.0.1:9",
      GITLAB_BASE_URL: "http://127.0.0.1:9",
    };
    const file = (name: string, content: string | Buffer): string => {
      const target = path.join(dir, "corpus", name);
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, content);
      return target;
    };
    const cases = (): [string, string[], Record<string, string>, number, RegExp][] => [
      [
        "handshake: a YAML alias bomb",
        ["handshake", "check", path.dirname(file("bomb/service.yaml", bomb))],
        {},
        2,
        /service\.yaml: refused: Excessive alias count/,
      ],
      ["handshake: binary garbage", ["handshake", "check", path.dirname(file("garbage/service.yaml", garbage))], {}, 2, /garbage: service\.yaml: /],
      ["handshake: an unknown mode", ["handshake", "check", "--mode", "sometimes", dir], {}, 2, /--mode must be strict or relaxed, not "sometimes"/],
      ["handshake: a folder that does not exist", ["handshake", "check", "/nonexistent/service"], {}, 2, /\/nonexistent\/service: no such folder/],
      [
        "handshake: an unreachable repository",
        ["handshake", "check", "http://127.0.0.1:9/x.git"],
        {},
        2,
        /failed to list refs of http:\/\/127\.0\.0\.1:9\/x\.git: .*ECONNREFUSED/,
      ],
      ["handshake: a git:// URL", ["handshake", "check", "git://127.0.0.1/x.git"], {}, 2, /git:\/\/127\.0\.0\.1\/x\.git: not a git URL/],
      [
        "compose: a YAML alias bomb",
        ["compose", "render", path.dirname(file("cbomb/compose.yaml", bomb))],
        {},
        2,
        /compose\.yaml: refused: Excessive alias count/,
      ],
      [
        "compose: binary garbage",
        ["compose", "render", path.dirname(file("cgarbage/compose.yaml", garbage))],
        {},
        2,
        /invalid project: compose\.yaml: must be a mapping/,
      ],
      ["compose: plan with one source", ["compose", "plan", dir], {}, 2, /plan takes OLD and NEW/],
      ["compose: an import file that is not JSON", ["compose", "import-opsgit", file("ops.json", garbage)], {}, 2, /ops\.json: [\s\S]*not valid JSON/],
      [
        "backup: a negative concurrency",
        ["backup", "sync", "--concurrency=-5"],
        { ...s3Env, WORK_DIR: dir },
        2,
        /--concurrency must be a whole number, not "-5"/,
      ],
      [
        "backup: a delete limit over 100%",
        ["backup", "sync", "--max-delete-percent", "150"],
        { ...s3Env, WORK_DIR: dir },
        2,
        /--max-delete-percent is a percentage from 0 to 100, not 150/,
      ],
      [
        "backup: a git:// repository",
        ["backup", "sync"],
        { ...s3Env, GIT_REPOSITORY: "git://host/x.git" },
        2,
        /GIT_REPOSITORY: git:\/\/host\/x\.git: not a git URL/,
      ],
      [
        "backup: an SSH repository without a key",
        ["backup", "sync"],
        { ...s3Env, GIT_REPOSITORY: "git@host:x.git" },
        2,
        /an SSH repository: set SSH_KEY_PATH or GIT_SSH_KEY_FILE/,
      ],
      [
        "backup: an encryption recipient that is no age key",
        ["backup", "sync", "--encrypt-recipient", "nope", "--encrypt-include", "**"],
        { ...s3Env, WORK_DIR: dir },
        2,
        /--encrypt-recipient\[0\]: "nope" is not an age recipient/,
      ],
      [
        "backup: an unreachable bucket",
        ["backup", "sync"],
        { ...s3Env, WORK_DIR: dir },
        1,
        /failed to list s3 bucket cluster-backups at http:\/\/127\.0\.0\.1:9/,
      ],
      ["partition: an unknown command", ["partition", "frobnicate"], partitionEnv, 2, /unknown command "frobnicate"/],
      [
        "partition: a PRIVATE_KEY that is no age identity",
        ["partition", "consume"],
        { ...partitionEnv, PRIVATE_KEY: "y" },
        2,
        /PRIVATE_KEY: not an age identity/,
      ],
      [
        "partition: a GITLAB_BASE_URL that is no git server",
        ["partition", "consume"],
        { ...partitionEnv, GITLAB_BASE_URL: "ftp://x", PRIVATE_KEY: identity },
        2,
        /GITLAB_BASE_URL: .*not a git URL/,
      ],
      [
        "partition: a desired state that is binary garbage",
        ["partition", "produce", "--desired-state", file("desired.bin", garbage)],
        { ...partitionEnv, PUBLIC_KEY: "x" },
        2,
        /desired\.bin: /,
      ],
      ["dataset: no etcd named", ["dataset", "ls"], {}, 2, /name etcd with --endpoints, ETCD_ENDPOINTS or --config/],
      ["dataset: an etcd endpoint that is no address", ["dataset", "ls", "--endpoints", "::::"], {}, 2, /failed to list etcd at ::::/],
      ["dataset: a tag without a value", ["dataset", "ls", "--endpoints", "http://127.0.0.1:9", "--tag", "domain"], {}, 2, /--tag domain: expected key=value/],
      [
        "operator: a kubeconfig that does not exist",
        ["operator", "--kubeconfig", "/nonexistent/kubeconfig"],
        {},
        2,
        /cannot load the kubeconfig \/nonexistent\/kubeconfig: .*ENOENT/,
      ],
      [
        "operator: a renew deadline past the lease",
        ["operator", "--lease-duration", "5s", "--renew-deadline", "10s"],
        {},
        2,
        /--renew-deadline must be shorter than --lease-duration/,
      ],
      ["operator: a concurrency of 0", ["operator", "--concurrency", "0"], {}, 2, /--concurrency must be a whole number from 1 to 256, not "0"/],
    ];
    it("answers every case as documented", async () => {
      const failures: string[] = [];
      for (const [name, args, vars, code, message] of cases()) {
        const result = await runGitsync(args, { ...plainEnv(), ...vars });
        const text = result.stderr + result.stdout;
        if (result.code !== code) failures.push(`${name}: exit ${result.code}, not ${code}: ${text.slice(0, 300)}`);
        else if (!message.test(text)) failures.push(`${name}: ${text.slice(0, 300)} does not match ${message}`);
        else if (/\n\s+at .*\(?(node:|file:|\/)/.test(text)) failures.push(`${name}: a stack trace`);
        else if (/secret-value-[34]/.test(text)) failures.push(`${name}: printed a secret`);
      }
      assert.deepEqual(failures, []);
    });
  });

  it("gitsync with an unknown command prints its usage (exit 2)", async () => {
    expectClean(await runGitsync(["restore"], plainEnv()), 2, /unknown command "restore"/);
  });
});
