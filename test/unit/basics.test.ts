import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { z } from "zod";
import { authHeaders, credentialsFromSecret } from "../../src/git/auth.js";
import { formatDuration, parseDuration } from "../../src/util/duration.js";
import { needsReconcile } from "../../src/runtime/manager.js";
import { requestedAt } from "../../src/runtime/reconciler.js";
import { redact, registerSecret, safeUrl } from "../../src/util/redact.js";
import { parseOperatorFlags } from "../../src/cli/operator.js";
import { fingerprint, hostKeyAlgorithms, keysFor } from "../../src/git/known-hosts.js";
import { describeZodError } from "../../src/util/fields.js";
import { isSshUrl, knownHostsName, parseGitUrl } from "../../src/util/giturl.js";
import { nodeVersionProblem } from "../../src/util/node-version.js";
import { s3EndpointUrl } from "../../src/util/url.js";
import { ownerKey, ownerLabels } from "../../src/runtime/owners.js";
import type { KubeObject } from "../../src/runtime/kube.js";

describe("durations", () => {
  const table: [string, number][] = [
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["250ms", 250],
    ["1.5h", 5_400_000],
  ];
  for (const [text, ms] of table) it(`reads ${text} as ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  for (const bad of ["", "5", "five minutes", "1d", "-1s"]) it(`rejects "${bad}"`, () => assert.throws(() => parseDuration(bad), /invalid duration/));
  it("formats back to the shortest form", () => {
    assert.deepEqual([90_000, 3_600_000, 500, 0].map(formatDuration), ["1m30s", "1h", "500ms", "0ms"]);
  });
});

describe("redaction", () => {
  it("strips userinfo from URLs wherever they stand in a text", () => {
    assert.equal(redact("failed: https://bob:hunter22@git.example.com/x.git and http://tok@h/y"), "failed: https://git.example.com/x.git and http://h/y");
  });
  it("masks every registered secret value", () => {
    registerSecret("s3cr3t-value");
    assert.equal(redact("auth with s3cr3t-value failed (s3cr3t-value)"), "auth with *** failed (***)");
  });
  it("ignores values too short to be secrets, so ordinary words survive", () => {
    registerSecret("ab");
    assert.equal(redact("a b ab"), "a b ab");
  });
  it("gives a URL without credentials", () => assert.equal(safeUrl("https://u:p@h.example/r.git"), "https://h.example/r.git"));
  it("keeps the user of an SSH URL, which is its address, and drops a password", () => {
    assert.equal(safeUrl("ssh://git@h.example:2222/r.git"), "ssh://git@h.example:2222/r.git");
    assert.equal(safeUrl("ssh://git:secret@h.example/r.git"), "ssh://git@h.example/r.git");
    assert.equal(safeUrl("git@h.example:o/r.git"), "git@h.example:o/r.git");
  });
});

describe("git credentials", () => {
  it("sends basic auth up front and registers the password for redaction", () => {
    const creds = credentialsFromSecret({ username: "bot", password: "tok-123456" }, "git-auth");
    assert.equal(authHeaders(creds).Authorization, `Basic ${Buffer.from("bot:tok-123456").toString("base64")}`);
    assert.equal(redact("tok-123456"), "***");
  });
  it("prefers a bearer token", () => {
    assert.deepEqual(authHeaders(credentialsFromSecret({ bearerToken: "bearer-abcdef" }, "s")), { Authorization: "Bearer bearer-abcdef" });
  });
  it("names the Secret when it holds no usable key", () => {
    assert.throws(() => credentialsFromSecret({ token: "x" }, "git-auth"), /Secret git-auth has none of the keys/);
  });
  it("reads a Secret in Flux's SSH format and registers the key for redaction", () => {
    const creds = credentialsFromSecret({ identity: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc", known_hosts: "h ssh-ed25519 AAAA" }, "s");
    assert.equal(creds.knownHosts, "h ssh-ed25519 AAAA");
    assert.equal(redact(`key ${creds.identity}`), "key ***");
  });
});

describe("git URLs", () => {
  const table: [string, ReturnType<typeof parseGitUrl>][] = [
    ["https://h.example/r.git", { transport: "http", url: "https://h.example/r.git" }],
    ["ssh://git@h.example/srv/r.git", { transport: "ssh", user: "git", host: "h.example", port: 22, path: "/srv/r.git" }],
    ["ssh://deploy@h.example:2222/r.git", { transport: "ssh", user: "deploy", host: "h.example", port: 2222, path: "/r.git" }],
    ["ssh://h.example/~/r.git", { transport: "ssh", user: "git", host: "h.example", port: 22, path: "~/r.git" }],
    ["ssh://git@[::1]:2222/r.git", { transport: "ssh", user: "git", host: "::1", port: 2222, path: "/r.git" }],
    ["git@github.com:acme/x.git", { transport: "ssh", user: "git", host: "github.com", port: 22, path: "acme/x.git" }],
    ["h.example:team/r.git", { transport: "ssh", user: "git", host: "h.example", port: 22, path: "team/r.git" }],
  ];
  for (const [url, parsed] of table) it(`reads ${url}`, () => assert.deepEqual(parseGitUrl(url), parsed));
  for (const url of ["git://h/r.git", "ftp://h/r.git", "/local/path", "ssh://h.example", "https://"])
    it(`refuses ${url}, naming it`, () => assert.throws(() => parseGitUrl(url), /not a git URL|names no|not a valid/));
  it("tells SSH URLs apart", () => {
    assert.ok(isSshUrl("git@h:r.git") && isSshUrl("ssh://h/r") && !isSshUrl("https://h/r") && !isSshUrl("/a:b"));
  });
  it("names a host on another port as known_hosts does", () => assert.equal(knownHostsName("h", 2222), "[h]:2222"));
});

describe("known_hosts", () => {
  const key = Buffer.from("the host key blob");
  const other = Buffer.from("another key blob");
  const salt = Buffer.from("0123456789abcdef0123");
  const hashed = (name: string): string => `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
  const file = [
    "# comment",
    `git.example.com,10.0.0.1 ssh-ed25519 ${key.toString("base64")}`,
    `[git.example.com]:2222 ecdsa-sha2-nistp256 ${other.toString("base64")} ops@laptop`,
    `${hashed("hashed.example")} ssh-rsa ${key.toString("base64")}`,
    `*.corp.example,!bad.corp.example ssh-ed25519 ${key.toString("base64")}`,
    `@revoked git.example.com ssh-ed25519 ${other.toString("base64")}`,
    `@cert-authority *.example ssh-ed25519 ${other.toString("base64")}`,
  ].join("\n");
  const keys = (name: string): string[] => keysFor(file, name).map((k) => `${k.revoked ? "revoked " : ""}${k.type}:${k.key.toString()}`);

  it("finds a host among a pattern list, with its revoked keys", () =>
    assert.deepEqual(keys("git.example.com"), ["ssh-ed25519:the host key blob", "revoked ssh-ed25519:another key blob"]));
  it("keeps [host]:port entries apart from port 22", () => assert.deepEqual(keys("[git.example.com]:2222"), ["ecdsa-sha2-nistp256:another key blob"]));
  it("matches hashed entries", () => assert.deepEqual(keys("hashed.example"), ["ssh-rsa:the host key blob"]));
  it("matches wildcards and honours negation", () => {
    assert.deepEqual(keys("build.corp.example"), ["ssh-ed25519:the host key blob"]);
    assert.deepEqual(keys("bad.corp.example"), []);
  });
  it("offers the algorithms of the known key types (three for RSA), none for a revoked key", () =>
    assert.deepEqual(hostKeyAlgorithms(keysFor(file, "hashed.example")), ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]));
  it("prints fingerprints as ssh does", () => assert.match(fingerprint(key), /^SHA256:[A-Za-z0-9+/]{43}$/));
});

describe("describeZodError", () => {
  it("names each failing field with its path", () => {
    const schema = z.object({ services: z.array(z.object({ source: z.object({ url: z.string().url() }) })), mode: z.enum(["Strict", "Relaxed"]) });
    const result = schema.safeParse({ services: [{ source: { url: "https://ok" } }, { source: { url: "nope" } }], mode: "Loose" });
    assert.ok(!result.success);
    const text = describeZodError(result.error);
    assert.match(text, /spec\.services\[1\]\.source\.url: /);
    assert.match(text, /spec\.mode: /);
  });
});

describe("the reconcile request an object carries", () => {
  const table: [string, Record<string, string> | undefined, string | undefined][] = [
    ["none", undefined, undefined],
    ["ours alone", { "gitsync.dev/requestedAt": "any value" }, "any value"],
    ["Flux's alone", { "reconcile.fluxcd.io/requestedAt": "2026-12-07T10:00:00.123Z" }, "2026-12-07T10:00:00.123Z"],
    [
      "the later of the two",
      { "gitsync.dev/requestedAt": "2026-12-07T09:00:00Z", "reconcile.fluxcd.io/requestedAt": "2026-12-07T10:00:00Z" },
      "2026-12-07T10:00:00Z",
    ],
    [
      "ours when it is later",
      { "gitsync.dev/requestedAt": "2026-12-07T11:00:00Z", "reconcile.fluxcd.io/requestedAt": "2026-12-07T10:00:00Z" },
      "2026-12-07T11:00:00Z",
    ],
    [
      "a time over a value that is none",
      { "gitsync.dev/requestedAt": "now", "reconcile.fluxcd.io/requestedAt": "2026-12-07T10:00:00Z" },
      "2026-12-07T10:00:00Z",
    ],
    ["ours when neither is a time", { "gitsync.dev/requestedAt": "a", "reconcile.fluxcd.io/requestedAt": "b" }, "a"],
  ];
  for (const [name, annotations, expected] of table) it(`is ${name}`, () => assert.equal(requestedAt({ annotations }), expected));
});

describe("needsReconcile (what a watch event enqueues)", () => {
  const obj = (meta: Partial<KubeObject["metadata"]>): KubeObject => ({
    apiVersion: "v1",
    kind: "X",
    metadata: { name: "n", generation: 1, resourceVersion: "1", ...meta },
  });
  const table: [string, KubeObject | undefined, KubeObject | undefined, boolean][] = [
    ["a new object", undefined, obj({}), true],
    ["a deleted object (nothing left to do but forget)", obj({}), undefined, false],
    ["a status-only write (generation unchanged)", obj({}), obj({ resourceVersion: "2" }), false],
    ["a spec change", obj({}), obj({ generation: 2 }), true],
    ["a requestedAt annotation", obj({}), obj({ annotations: { "gitsync.dev/requestedAt": "now" } }), true],
    ["Flux's requestedAt annotation", obj({}), obj({ annotations: { "reconcile.fluxcd.io/requestedAt": "2026-12-07T10:00:00Z" } }), true],
    [
      "a Flux request older than ours (ours still counts)",
      obj({ annotations: { "gitsync.dev/requestedAt": "2026-12-07T10:00:00Z" } }),
      obj({ annotations: { "gitsync.dev/requestedAt": "2026-12-07T10:00:00Z", "reconcile.fluxcd.io/requestedAt": "2026-12-07T09:00:00Z" } }),
      false,
    ],
    ["the start of deletion", obj({}), obj({ deletionTimestamp: "2026-01-01T00:00:00Z" }), true],
    ["another annotation (kubectl annotate for anything else)", obj({}), obj({ resourceVersion: "2", annotations: { note: "x" } }), false],
    ["a label edit", obj({}), obj({ resourceVersion: "2", labels: { team: "a" } }), false],
  ];
  for (const [name, previous, current, expected] of table) {
    it(`${expected ? "enqueues" : "ignores"} ${name}`, () => assert.equal(needsReconcile(previous, current), expected));
  }
});

describe("ownerKey (which object a watched child reconciles)", () => {
  const child = (meta: Partial<KubeObject["metadata"]>): KubeObject => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "c", namespace: "ns", ...meta },
  });
  const owner = { kind: "ComposeDeployment", group: "gitsync.dev" };
  it("follows an ownerReference to the kind", () => {
    assert.equal(ownerKey(child({ ownerReferences: [{ apiVersion: "gitsync.dev/v1beta1", kind: "ComposeDeployment", name: "shop" }] }), owner), "ns/shop");
  });
  it("ignores an ownerReference to another kind or group", () => {
    assert.equal(ownerKey(child({ ownerReferences: [{ apiVersion: "apps/v1", kind: "ComposeDeployment", name: "shop" }] }), owner), undefined);
  });
  it("follows the owner labels where no ownerReference can be used", () => {
    assert.equal(
      ownerKey(child({ namespace: undefined, labels: ownerLabels({ kind: "ComposeDeployment", namespace: "team", name: "shop" }) }), owner),
      "team/shop",
    );
  });
});

describe("the Node.js gitsync runs on", () => {
  for (const version of ["20.20.2", "22.11.0", "v18.0.0"])
    it(`refuses ${version}, saying what it needs and how to get it`, () =>
      assert.match(nodeVersionProblem(version) ?? "", /needs Node\.js 24 or newer[\s\S]*npm ci/));
  for (const version of ["24.0.0", "24.21.0", "26.1.0"]) it(`accepts ${version}`, () => assert.equal(nodeVersionProblem(version), undefined));
});

describe("gitsync operator flags", () => {
  it("refuses an unknown flag", () => assert.throws(() => parseOperatorFlags(["--some-unknown-flag"]), /Unknown option '--some-unknown-flag'/));
  it("names a duration flag that holds no duration", () =>
    assert.throws(() => parseOperatorFlags(["--retry-period", "2"]), /^Error: --retry-period: invalid duration "2"/));
  it("refuses a renew deadline not shorter than the lease", () =>
    assert.throws(() => parseOperatorFlags(["--lease-duration", "10s", "--renew-deadline", "10s"]), /--renew-deadline must be shorter than --lease-duration/));
  it("reads the defaults", () =>
    assert.deepEqual(parseOperatorFlags([]).durations, {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      shutdownTimeoutMs: 30_000,
      progressIntervalMs: 5_000,
    }));
});

describe("S3 endpoints", () => {
  it("adds the scheme to a bare host:port", () => {
    assert.equal(s3EndpointUrl("minio:9000", true), "http://minio:9000");
    assert.equal(s3EndpointUrl("minio:9000"), "https://minio:9000");
    assert.equal(s3EndpointUrl("http://[::1]:9000"), "http://[::1]:9000");
  });
  for (const bad of ["::::", "http://", "ftp://host", "http://a b"])
    it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => s3EndpointUrl(bad), /S3 endpoint|names no host/));
});
