import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { generateIdentity, identityToRecipient } from "age-encryption";
import * as tar from "tar";
import { goFlags, reposFromDesiredState, runPartition } from "../../src/cli/partition.js";
import { checkTarball, entryProblem, ExtractRejected } from "../../src/partition/archive.js";
import { signDigest, verifyDigest } from "../../src/partition/crypto.js";
import { decodeKey, encodeKey, KeyError } from "../../src/partition/key.js";
import { bundleChain, lastShipped, type BucketObject } from "../../src/partition/select.js";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);

describe("partition object keys (the old tool's wire format)", () => {
  it("writes compact JSON in the old field order, base64 with padding, .tar.age", () => {
    const key = encodeKey({ group: "team/sub", projectName: "app", commitSha: A, localBranch: "main", remoteBranch: "release", format: "Tarball" });
    assert.ok(key.endsWith(".tar.age"));
    assert.equal(
      Buffer.from(key.slice(0, key.indexOf(".")), "base64").toString(),
      `{"group":"team/sub","project_name":"app","commit_sha":"${A}","local_branch":"main","remote_branch":"release"}`,
    );
    assert.deepEqual(decodeKey(key), { group: "team/sub", projectName: "app", commitSha: A, localBranch: "main", remoteBranch: "release", format: "Tarball" });
  });

  it("escapes <, > and & as Go's encoding/json does", () => {
    const key = encodeKey({ group: "g", projectName: "p", commitSha: A, localBranch: "a&b", remoteBranch: "<x>", format: "Tarball" });
    assert.match(Buffer.from(key.split(".")[0]!, "base64").toString(), /"local_branch":"a\\u0026b","remote_branch":"\\u003cx\\u003e"/);
    assert.equal(decodeKey(key).remoteBranch, "<x>");
  });

  it("refuses names that climb out of the destination or are no git branch, naming the field", () => {
    const raw = (fields: object): string =>
      Buffer.from(JSON.stringify({ commit_sha: A, local_branch: "main", remote_branch: "main", ...fields })).toString("base64") + ".tar.age";
    assert.throws(() => decodeKey(raw({ group: "../open", project_name: "p" })), /group "\.\.\/open" is not a group path/);
    assert.throws(() => decodeKey(raw({ group: "g", project_name: "a/b" })), /project_name "a\/b" is not a project name/);
    assert.throws(() => decodeKey(raw({ group: "g", project_name: ".git" })), /project_name/);
    assert.throws(() => decodeKey(raw({ group: "g", project_name: "p", remote_branch: "a..b" })), /remote_branch "a\.\.b" holds "\.\."/);
    assert.throws(() => decodeKey(raw({ group: "g", project_name: "p", local_branch: "x.lock" })), /local_branch/);
    assert.equal(decodeKey(raw({ group: "a/b-c/d.e", project_name: "p_1", remote_branch: "release/1.2" })).group, "a/b-c/d.e");
  });

  it("reads the older single branch field as both branches, and bundles with base_sha", () => {
    const old = Buffer.from(JSON.stringify({ group: "g", project_name: "p", commit_sha: A, branch: "main" })).toString("base64") + ".tar.age";
    assert.deepEqual([decodeKey(old).localBranch, decodeKey(old).remoteBranch], ["main", "main"]);
    const bundle = encodeKey({ group: "g", projectName: "p", commitSha: B, localBranch: "main", remoteBranch: "main", format: "Bundle", baseSha: A });
    assert.ok(bundle.endsWith(".bundle.age"));
    assert.deepEqual([decodeKey(bundle).format, decodeKey(bundle).baseSha], ["Bundle", A.slice(0, 12)]);
  });

  it("refuses keys it cannot read, naming them", () => {
    for (const bad of [
      "nodot",
      "abc.zip",
      `${Buffer.from("not json").toString("base64")}.tar.age`,
      `${Buffer.from('{"group":"g"}').toString("base64")}.tar.age`,
    ]) {
      assert.throws(
        () => decodeKey(bad),
        (err: unknown) => err instanceof KeyError && err.message.includes(bad),
      );
    }
  });
});

describe("which objects of a destination matter", () => {
  const object = (commitSha: string, format: "Tarball" | "Bundle", baseSha?: string): BucketObject => ({
    key: `${commitSha.slice(0, 1)}-${format}`,
    size: 1,
    group: "g",
    projectName: "p",
    localBranch: "main",
    remoteBranch: "main",
    commitSha,
    format,
    ...(baseSha ? { baseSha } : {}),
  });

  it("follows bundles from a commit, in order, whatever the listing order", () => {
    const objects = [object(C, "Bundle", B), object(A, "Tarball"), object(B, "Bundle", A)];
    assert.deepEqual(
      bundleChain(objects, A).map((o) => o.commitSha),
      [B, C],
    );
    assert.deepEqual(bundleChain(objects, C), []);
    assert.deepEqual(lastShipped(objects), { commit: C, bundles: 2 });
    assert.equal(lastShipped([object(B, "Bundle", A)]), undefined, "no full object: nothing to build on");
  });
});

describe("safe extraction", () => {
  const cases: [string, Parameters<typeof entryProblem>, RegExp | undefined][] = [
    ["a file", ["src/main.go", "File", undefined], undefined],
    ["a .git object", [".git/objects/ab/cdef", "File", undefined], undefined],
    ["an absolute path", ["/etc/passwd", "File", undefined], /absolute path/],
    ["a parent path", ["a/../../x", "File", undefined], /leaves the folder/],
    ["a device", ["dev/sda", "BlockDevice", undefined], /BlockDevice, not a file/],
    ["a FIFO", ["pipe", "FIFO", undefined], /FIFO/],
    ["a link inside", ["a/link", "SymbolicLink", "../b"], undefined],
    ["a link out", ["a/link", "SymbolicLink", "../../etc"], /leaves the folder/],
    ["an absolute link", ["link", "SymbolicLink", "/etc/shadow"], /leaves the folder/],
  ];
  for (const [what, args, problem] of cases) {
    it(`${problem ? "refuses" : "accepts"} ${what}`, () => {
      const found = entryProblem(...args);
      if (problem) assert.match(found ?? "", problem);
      else assert.equal(found, undefined);
    });
  }

  it("stops at the size limit, before the rest is decompressed", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "psync-unit-"));
    await mkdir(path.join(dir, "repo"));
    await writeFile(path.join(dir, "repo", "big"), Buffer.alloc(64 * 1024));
    await tar.create({ gzip: true, cwd: path.join(dir, "repo"), file: path.join(dir, "a.tar.gz") }, ["big"]);
    assert.deepEqual(await checkTarball(path.join(dir, "a.tar.gz"), 1024 * 1024), { files: 1, bytes: 64 * 1024 });
    await assert.rejects(
      checkTarball(path.join(dir, "a.tar.gz"), 1024),
      (err: unknown) => err instanceof ExtractRejected && /more than 1024 bytes/.test(err.message),
    );
  });
});

describe("object signatures", () => {
  it("verifies with the signer's public key only", () => {
    const ours = generateKeyPairSync("ed25519");
    const theirs = generateKeyPairSync("ed25519");
    const pem = (k: typeof ours, part: "privateKey" | "publicKey") =>
      part === "privateKey" ? k.privateKey.export({ type: "pkcs8", format: "pem" }).toString() : k.publicKey.export({ type: "spki", format: "pem" }).toString();
    const digest = "ab".repeat(32);
    const signature = signDigest(digest, pem(ours, "privateKey"));
    assert.ok(verifyDigest(digest, signature, [pem(theirs, "publicKey"), pem(ours, "publicKey")]));
    assert.ok(!verifyDigest(digest, signature, [pem(theirs, "publicKey")]));
    assert.ok(!verifyDigest("cd".repeat(32), signature, [pem(ours, "publicKey")]), "another ciphertext");
    assert.ok(!verifyDigest(digest, undefined, [pem(ours, "publicKey")]), "unsigned");
  });
});

describe("gitsync partition configuration", () => {
  it("takes the old tool's Go-style flags", () => {
    assert.deepEqual(goFlags(["-dry-run", "-run-once=false", "--format", "Bundle"]), ["--dry-run", "--no-run-once", "--format", "Bundle"]);
    assert.deepEqual(goFlags(["-run-once=true"]), ["--run-once"]);
  });

  it("reads the old desired-state file, naming a bad entry", () => {
    const server = { baseUrl: "https://gitlab.example", credentials: undefined };
    const doc = `apps_v1:
  - codeComponents:
      - gitlabSync:
          sourceProject: { name: app, group: team, branch: main }
          destinationProject: { name: app-mirror, group: inside, branch: release }
      - gitlabSync: null
`;
    assert.deepEqual(reposFromDesiredState(doc, "d.yaml", server), [
      {
        source: { url: "https://gitlab.example/team/app.git", branch: "main", credentials: undefined },
        destination: { group: "inside", project: "app-mirror", branch: "release" },
      },
    ]);
    assert.throws(
      () => reposFromDesiredState(doc.replace("branch: release", "x: 1"), "d.yaml", server),
      /d\.yaml: apps_v1\[0\]\.codeComponents\[0\]\.gitlabSync\.destinationProject\.branch: /,
    );
  });

  it("names the field of a desired-state file of the wrong shape", () => {
    const server = { baseUrl: "https://gitlab.example", credentials: undefined };
    assert.throws(() => reposFromDesiredState("apps_v1:\n  a: {codeComponents: []}\n", "d.yaml", server), /^Error: d\.yaml: apps_v1: /);
    assert.throws(() => reposFromDesiredState("apps_v1:\n  - codeComponents: {x: 1}\n", "d.yaml", server), /^Error: d\.yaml: apps_v1\[0\]\.codeComponents: /);
    assert.throws(() => reposFromDesiredState("apps_v1: [\n", "d.yaml", server), /^Error: d\.yaml: invalid YAML/);
  });
});

describe("gitsync partition refuses a bad configuration up front (exit 2, before any bucket or server)", () => {
  let dir: string;
  let identity: string;
  let recipient: string;
  before(async () => {
    identity = await generateIdentity();
    recipient = await identityToRecipient(identity);
    dir = mkdtempSync(path.join(os.tmpdir(), "gitsync-partition-cli-"));
    writeFileSync(path.join(dir, "desired.yaml"), "apps_v1: []\n");
    writeFileSync(path.join(dir, "mapping.yaml"), "apps_v1:\n  shop: {codeComponents: []}\n");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // Port 9 on loopback: nothing listens, so a command that got as far as the bucket would fail with 1, not 2.
  const base = (): NodeJS.ProcessEnv => ({
    AWS_ACCESS_KEY_ID: "ak",
    AWS_SECRET_ACCESS_KEY: "sk-not-a-real-secret",
    AWS_S3_BUCKET: "b",
    AWS_ENDPOINT_URL: "http://127.0.0.1:9",
    GITLAB_BASE_URL: "http://127.0.0.1:9",
    WORKDIR: dir,
    PUBLIC_KEY: recipient,
    PRIVATE_KEY: identity,
    DESIRED_STATE_FILE: path.join(dir, "desired.yaml"),
  });

  async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; err: string }> {
    let err = "";
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (chunk: string) => ((err += chunk), true);
    try {
      return { code: await runPartition(argv, env), err };
    } finally {
      process.stderr.write = write;
    }
  }

  const cases: [string, string[], NodeJS.ProcessEnv, RegExp][] = [
    ["a desired-state file whose apps_v1 is a mapping", ["produce"], { DESIRED_STATE_FILE: path.join("%DIR%", "mapping.yaml") }, /mapping\.yaml: apps_v1: /],
    [
      "a missing desired-state file",
      ["produce"],
      { DESIRED_STATE_FILE: "/nonexistent/desired.yaml" },
      /--desired-state: cannot read \/nonexistent\/desired\.yaml: ENOENT/,
    ],
    ["a PUBLIC_KEY that is no age recipient", ["produce"], { PUBLIC_KEY: "age1nope" }, /PUBLIC_KEY\[0\]: "age1nope" is not an age recipient/],
    ["a second PUBLIC_KEY that is no age recipient", ["produce"], { PUBLIC_KEY: "%RECIPIENT%,ssh-rsa AAAA" }, /PUBLIC_KEY\[1\]: /],
    ["a PRIVATE_KEY that is no age identity", ["consume"], { PRIVATE_KEY: "AGE-SECRET-KEY-1THISISNOTAKEY" }, /PRIVATE_KEY: not an age identity/],
    [
      "a RECONCILE_SLEEP_TIME that is no duration",
      ["consume", "-run-once=false"],
      { RECONCILE_SLEEP_TIME: "often" },
      /RECONCILE_SLEEP_TIME: invalid duration "often"/,
    ],
    ["half an AWS key pair", ["produce"], { AWS_SECRET_ACCESS_KEY: undefined }, /AWS_SECRET_ACCESS_KEY is not set \(AWS_ACCESS_KEY_ID is\)/],
    ["a --full-every that is no number", ["produce", "--format", "Bundle", "--full-every", "x"], {}, /--full-every must be a whole number/],
    ["a verify key that is no Ed25519 key", ["consume", "--verify-key", "%DIR%/desired.yaml"], {}, /desired\.yaml: not an Ed25519 public key/],
  ];
  for (const [name, argv, overrides, message] of cases) {
    it(`exits 2 on ${name}, naming it`, async () => {
      const fill = (v: string | undefined): string | undefined => v?.replace("%DIR%", dir).replace("%RECIPIENT%", recipient);
      const env = { ...base(), ...Object.fromEntries(Object.entries(overrides).map(([k, v]) => [k, fill(v)])) };
      const { code, err } = await run(
        argv.map((a) => fill(a)!),
        env,
      );
      assert.equal(code, 2, err);
      assert.match(err, message);
      assert.doesNotMatch(err, /\n\s+at /, "no stack trace");
      assert.ok(!err.includes(identity.slice(16)), "the private key is never printed");
    });
  }
});
