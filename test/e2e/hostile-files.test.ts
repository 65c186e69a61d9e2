// Hostile content where each kind reads it, with the real operator running: files in the git
// repos of ServiceHandshake and ComposeDeployment, objects in the buckets of ClusterBackupSync
// and PartitionSync, values in the etcd of DatasetAdvert. Each case ends in a condition (or a
// per-repository error, or a skipped key) that names the file and the field; nothing valid
// next to it is lost, nothing is written outside its folder, and the operator never restarts.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Encrypter, generateIdentity, identityToRecipient } from "age-encryption";
import { stringify } from "yaml";
import { clusterBackupSyncKind } from "../../src/crds/clusterbackupsync.js";
import { composeDeploymentKind } from "../../src/crds/composedeployment.js";
import { datasetAdvertKind } from "../../src/crds/datasetadvert.js";
import { partitionSyncKind, type PartitionSyncStatus } from "../../src/crds/partitionsync.js";
import { serviceHandshakeKind } from "../../src/crds/servicehandshake.js";
import type { KindDefinition } from "../../src/crds/common.js";
import { encodeKey } from "../../src/partition/key.js";
import { resourceOf, resourcePath, type KubeClient } from "../../src/runtime/kube.js";
import { TESTAPP_IMAGE } from "../../hack/env/node.js";
import { eventually, OperatorProcess, runGitsync } from "./helpers.js";
import { adminClient, adminS3, createSecret, env, kubectlOk } from "./setup.js";

const ns = "hostile-files";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Object_ {
  status?: { conditions?: Condition[] } & Record<string, unknown>;
}

const BOMB = `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n`;
const GARBAGE = "\u0000\u0001\u00ff\ufffd\u0007PK\u0003\u0004".repeat(64);
const DEEP = `${"[".repeat(5000)}${"]".repeat(5000)}\n`;

describe("hostile files, objects and values where each kind reads them (real operator)", function () {
  let kube: KubeClient;
  let s3: S3Client;
  let operator: OperatorProcess;
  const sourceOf = (repo: string) => ({ url: env().git.url(repo), ref: { branch: "main" }, secretRef: { name: "git" } });

  async function apply(kind: KindDefinition<never, never>, name: string, spec: Record<string, unknown>): Promise<void> {
    await kubectlOk(["apply", "-f", "-"], stringify({ apiVersion: "gitsync.dev/v1beta1", kind: kind.kind, metadata: { name, namespace: ns }, spec }));
  }
  const get = (kind: KindDefinition<never, never>, name: string): Promise<Object_> => kube.request<Object_>("GET", resourcePath(resourceOf(kind), ns, name));

  /** Waits until each object's Ready is False with a message matching its pattern (and Stalled when asked). */
  async function expectEach(kind: KindDefinition<never, never>, cases: { name: string; object: string; message: RegExp; stalled?: boolean }[]): Promise<void> {
    const failures: string[] = [];
    await Promise.all(
      cases.map(async (c) => {
        try {
          await eventually(
            async () => {
              const conditions = (await get(kind, c.object)).status?.conditions ?? [];
              const ready = conditions.find((x) => x.type === "Ready");
              assert.equal(ready?.status, "False", `${c.name}: Ready is ${ready?.status} (${ready?.message})`);
              assert.match(ready?.message ?? "", c.message, c.name);
              if (c.stalled) assert.equal(conditions.find((x) => x.type === "Stalled")?.status, "True", `${c.name}: not Stalled`);
            },
            60_000,
            500,
          );
        } catch (err) {
          failures.push((err as Error).message.split("\n").slice(0, 3).join(" "));
        }
      }),
    );
    assert.deepEqual(failures, []);
    assert.ok(operator.isRunning(), "the operator never restarts");
  }

  before(async () => {
    kube = adminClient();
    s3 = adminS3();
    await kubectlOk(["create", "namespace", ns]);
    await createSecret(ns, "git", { username: env().git.username, password: env().git.password });
    await createSecret(ns, "s3", { accesskey: env().s3.accessKey, secretkey: env().s3.secretKey });
    operator = OperatorProcess.start({ entry: "gitsync" });
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") process.stderr.write(`\nOperator log:\n${operator.lines.slice(-30).join("\n")}\n`);
  });

  after(async () => {
    await operator.stop();
    s3.destroy();
    kube.close();
  });

  it("ServiceHandshake: hostile service.yaml, contract.yaml and interface.yaml stall naming the file and field", async () => {
    const service = "metadata:\n  name: svc\n  version: 1.0.0\n";
    const contract = "version: 1.0.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /x\n";
    const cases: [string, Record<string, string>, RegExp][] = [
      ["no service.yaml", { "contract.yaml": contract }, /service\.yaml/],
      ["a YAML alias bomb", { "service.yaml": BOMB, "contract.yaml": contract }, /service\.yaml: .*alias/i],
      ["binary garbage", { "service.yaml": GARBAGE, "contract.yaml": contract }, /service\.yaml: /],
      ["5,000 levels of nesting", { "service.yaml": DEEP, "contract.yaml": contract }, /service\.yaml: /],
      ["a scalar document", { "service.yaml": "hello\n", "contract.yaml": contract }, /service\.yaml: /],
      ["two documents", { "service.yaml": `${service}---\n${service}`, "contract.yaml": contract }, /service\.yaml: /],
      ["a duplicate key", { "service.yaml": "metadata:\n  name: a\n  name: b\n", "contract.yaml": contract }, /service\.yaml: .*(duplicate|unique)/i],
      ["metadata.name as a list", { "service.yaml": "metadata:\n  name: [a, b]\n", "contract.yaml": contract }, /service\.yaml: metadata\.name/],
      ["version banana", { "service.yaml": service, "contract.yaml": contract.replace("1.0.0", "banana") }, /contract\.yaml: version/],
      [
        "endpoints as a string",
        { "service.yaml": service, "contract.yaml": "version: 1.0.0\napiSpec:\n  endpoints: all\n" },
        /contract\.yaml: apiSpec\.endpoints/,
      ],
      [
        "an endpoint without a path",
        { "service.yaml": service, "contract.yaml": "version: 1.0.0\napiSpec:\n  endpoints:\n    - method: GET\n" },
        /contract\.yaml: apiSpec\.endpoints\[0\]\.path/,
      ],
      [
        "dependencies as a mapping",
        { "service.yaml": service, "contract.yaml": contract, "interface.yaml": "dependencies:\n  stock: yes\n" },
        /interface\.yaml: dependencies/,
      ],
      [
        "an outbound call with no path",
        { "service.yaml": service, "contract.yaml": contract, "interface.yaml": "dependencies:\n  - name: stock\n    outbound:\n      method: GET\n" },
        /interface\.yaml: dependencies\[0\]\.outbound/,
      ],
      ["desiredState as a list", { "service.yaml": `${service}desiredState: [stock]\n`, "contract.yaml": contract }, /service\.yaml: desiredState/],
      [
        "a desired version that is no version",
        { "service.yaml": `${service}desiredState:\n  stock:\n    version: latest-ish\n`, "contract.yaml": contract },
        /service\.yaml: desiredState\.stock\.version/,
      ],
      [
        "a sync mode that does not exist",
        { "service.yaml": `${service}desiredState:\n  stock:\n    sync: sometimes\n    version: 1.0.0\n`, "contract.yaml": contract },
        /service\.yaml: desiredState\.stock\.sync/,
      ],
      [
        "a 3 MiB service.yaml",
        { "service.yaml": `${service}notes: "${"x".repeat(3 << 20)}"\n`, "contract.yaml": contract },
        /service\.yaml: .*(large|size|MiB)/i,
      ],
    ];
    const expected = cases.map(([name, files, message], i) => {
      env().git.createRepo(`hostile-shs-${i}`, files);
      return { name, object: `shs-${i}`, message, stalled: true };
    });
    assert.ok(cases.length >= 15);
    await Promise.all(
      expected.map((c, i) => apply(serviceHandshakeKind as never, c.object, { interval: "30s", services: [{ source: sourceOf(`hostile-shs-${i}`) }] })),
    );
    await expectEach(serviceHandshakeKind as never, expected);
  });

  it("ComposeDeployment: hostile compose files, .env and config folders stall naming the file and field", async () => {
    const web = (extra: string): string => `services:\n  web:\n    image: ${TESTAPP_IMAGE}\n${extra}`;
    const cases: [string, Record<string, string>, RegExp][] = [
      ["no compose file", { "README.md": "nothing\n" }, /compose\.yaml/],
      ["a YAML alias bomb", { "compose.yaml": BOMB }, /compose\.yaml: .*alias/i],
      ["binary garbage", { "compose.yaml": GARBAGE }, /compose\.yaml: /],
      ["5,000 levels of nesting", { "compose.yaml": DEEP }, /compose\.yaml: /],
      ["services as a list", { "compose.yaml": "services: [web]\n" }, /compose\.yaml: services/],
      ["build without image", { "compose.yaml": "services:\n  api:\n    build: .\n" }, /compose\.yaml: services\.api\.build/],
      ["ports that are no ports", { "compose.yaml": web("    ports: ['eighty:8080']\n") }, /compose\.yaml: services\.web\.ports/],
      ["a required variable unset", { "compose.yaml": web("    environment:\n      TOKEN: ${TOKEN:?set TOKEN}\n") }, /compose\.yaml: .*TOKEN.*set TOKEN/],
      [
        "an env_file outside the project",
        { "compose.yaml": web("    env_file: ../../../../etc/passwd\n") },
        /compose\.yaml: services\.web\.env_file.*(outside|leaves)/,
      ],
      ["a bind mount of a host folder", { "compose.yaml": web("    volumes:\n      - /etc:/host-etc\n") }, /compose\.yaml: services\.web\.volumes/],
      [
        "a config folder that does not exist",
        { "compose.yaml": web("    volumes:\n      - ./missing:/etc/web\n") },
        /compose\.yaml: services\.web\.volumes.*missing/,
      ],
      ["depends_on a service that does not exist", { "compose.yaml": web("    depends_on: [db]\n") }, /compose\.yaml: services\.web\.depends_on/],
      [
        "a healthcheck interval in words",
        { "compose.yaml": web("    healthcheck:\n      test: [CMD, x]\n      interval: soon\n") },
        /compose\.yaml: services\.web\.healthcheck\.interval/,
      ],
      ["negative replicas", { "compose.yaml": web("    deploy:\n      replicas: -1\n") }, /compose\.yaml: services\.web\.deploy\.replicas/],
      [
        "a service name that is no DNS label",
        { "compose.yaml": `services:\n  Web_Server:\n    image: ${TESTAPP_IMAGE}\n` },
        /compose\.yaml: services\.Web_Server/,
      ],
      ["a .env line that is binary garbage", { "compose.yaml": web(""), ".env": `A=1\n${GARBAGE}\n` }, /\.env: line 2/],
      [
        "a config folder of 2 MiB",
        { "compose.yaml": web("    volumes:\n      - ./conf:/etc/web\n"), "conf/big.txt": "x".repeat(2 << 20) },
        /services\.web\.volumes.*conf.*(large|size|MiB)/i,
      ],
    ];
    const expected = cases.map(([name, files, message], i) => {
      env().git.createRepo(`hostile-cdep-${i}`, files);
      return { name, object: `cdep-${i}`, message, stalled: true };
    });
    assert.ok(cases.length >= 15);
    await Promise.all(expected.map((c, i) => apply(composeDeploymentKind as never, c.object, { interval: "30s", source: sourceOf(`hostile-cdep-${i}`) })));
    await expectEach(composeDeploymentKind as never, expected);
  });

  it("ClusterBackupSync: keys that cannot be files are skipped and named; every other object is mirrored; nothing leaves the folder", async () => {
    const bucket = "hostile-backup";
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const good = new Map([
      ["east/default/deployments/web.yaml", "kind: Deployment\n"],
      ["east/default/services/web.yaml", "kind: Service\n"],
      ["east/a", "a file whose name is also a folder below is skipped, this one is kept\n"],
      ["east/garbage.yaml", GARBAGE],
      ["east/empty.yaml", ""],
      ["east/ünïcödé ☃.yaml", "kind: ConfigMap\n"],
    ]);
    const hostile = [
      "../escape.yaml",
      "east/../../escape.yaml",
      ".git/config",
      "east/.git/hooks/post-checkout",
      "east/.GIT/config",
      "east/a/", // a folder marker: left out silently
      ".gitsync/backup-index.json",
      "east/tab\there.yaml",
      "east/newline\nhere.yaml",
      `east/${"n".repeat(300)}.yaml`,
      "east/x/..",
      "..",
      "east/.git/x/y.yaml",
      `east/${"é".repeat(130)}.yaml`,
      "east/.git",
      "east/x/.git/config",
      "east/bell\u0007.yaml",
      "east/del\u007f.yaml",
      ".GIT/HEAD",
    ];
    // A file and a folder of the same name: the folder's objects win, the file is named.
    const conflicting = ["east/default", "east/default/configmaps/x.yaml"];
    for (const [key, body] of good) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    // An S3 server that keeps objects as files refuses some of these keys itself; the others must be handled here.
    const refused: string[] = [];
    for (const key of [...hostile, ...conflicting]) {
      const body = key.endsWith("/") ? "" : "kind: Evil\n";
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body })).catch(() => refused.push(key));
    }
    // What the operator is given is what the listing says (a server may also rewrite a key it took).
    const listed = ((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key ?? "");
    const stored = listed.filter((k) => !good.has(k) && !conflicting.includes(k));
    assert.ok(stored.length >= 10, `the S3 server refused ${JSON.stringify(refused)}; lists ${JSON.stringify(stored)}`);
    // A file and a folder of one name: S3 holds both, a server that keeps objects as files refuses the file.
    const conflict = !refused.includes("east/default");
    // With prefix "" the whole repo mirrors the bucket: a README would be pruned.
    env().git.createRepo("hostile-backup");
    await apply(clusterBackupSyncKind as never, "cbs", {
      interval: "30s",
      source: { endpoint: env().s3.endpoint, bucket, prefix: "", insecure: true, forcePathStyle: true, region: "us-east-1", secretRef: { name: "s3" } },
      destination: { url: env().git.url("hostile-backup"), secretRef: { name: "git" } },
    });
    const cbs = await eventually(
      async () => {
        const object = await get(clusterBackupSyncKind as never, "cbs");
        const ready = object.status?.conditions?.find((c) => c.type === "Ready");
        assert.equal(ready?.status, "True", ready?.message);
        return object;
      },
      60_000,
      500,
    );
    const files = env().git.git("hostile-backup", "ls-tree", "-r", "-z", "--name-only", "main").split("\0").filter(Boolean).sort();
    assert.deepEqual(files, [".gitsync/backup-index.json", ...good.keys(), "east/default/configmaps/x.yaml"].sort());
    // The tree is one native git accepts, and checks out.
    env().git.git("hostile-backup", "fsck", "--strict", "--no-dangling");
    const skipped = (cbs.status?.skippedKeys ?? []) as string[];
    for (const key of [...stored.filter((k) => !k.endsWith("/")), ...(conflict ? ["east/default"] : [])]) {
      assert.ok(
        skipped.some((s) => s.startsWith(`${JSON.stringify(key)}: `)),
        `${JSON.stringify(key)} is named in status.skippedKeys: ${JSON.stringify(skipped)}`,
      );
    }
    // gitsync backup sync into a folder writes nothing outside it.
    const work = mkdtempSync(path.join(os.tmpdir(), "hostile-backup-"));
    const dir = path.join(work, "mirror");
    const run = await runGitsync(["backup", "sync", "--prefix", ""], {
      ...process.env,
      MINIO_ENDPOINT: env().s3.endpoint,
      MINIO_ACCESS_KEY: env().s3.accessKey,
      MINIO_SECRET_KEY: env().s3.secretKey,
      MINIO_BUCKET: bucket,
      WORK_DIR: dir,
      GIT_REPOSITORY: "",
    });
    assert.equal(run.code, 0, run.stderr);
    const warning = run.stdout
      .split("\n")
      .flatMap((line) => (line.includes('"Skipped ') ? [JSON.parse(line) as { message: string; keys: string[] }] : []))
      .at(0);
    assert.match(warning?.message ?? "", /^Skipped \d+ bucket keys that cannot be files$/);
    assert.ok(warning?.keys.includes('".git/config": names a .git folder'), JSON.stringify(warning));
    assert.deepEqual(readdirSync(work), ["mirror"]);
    assert.ok(!existsSync(path.join(dir, ".git")));
    assert.ok(operator.isRunning());
  });

  it("PartitionSync: hostile bucket objects are refused per destination, named, and pushed nowhere", async () => {
    const bucket = "hostile-partition";
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const identity = await generateIdentity();
    const recipient = await identityToRecipient(identity);
    const other = await identityToRecipient(await generateIdentity());
    await createSecret(ns, "age", { "identity.agekey": identity });
    const seal = async (bytes: Uint8Array, to = recipient): Promise<Uint8Array> => {
      const e = new Encrypter();
      e.addRecipient(to);
      return e.encrypt(bytes);
    };
    const commit = "2".repeat(40);
    const key = (project: string, more: Record<string, string> = {}): string =>
      encodeKey({ group: "hostile", projectName: project, commitSha: commit, localBranch: "main", remoteBranch: "main", format: "Tarball", ...more });
    const raw = (fields: object, suffix = ".tar.age"): string => Buffer.from(JSON.stringify(fields)).toString("base64") + suffix;
    const tarGz = (await import("node:zlib")).gzipSync(Buffer.from("not a tar archive at all".repeat(40)));
    for (const project of ["garbage", "empty", "other", "truncated", "notar", "gznotar"]) env().git.createRepo(`hostile/${project}`);
    // A bundle is only tried on a destination whose head is its base.
    env().git.createRepo("hostile/badbundle", { "README.md": "base\n" });
    const base = env().git.git("hostile/badbundle", "rev-parse", "main");
    // [case, key, body, expected error: in status.repos (by destination) or status.unreadableKeys]
    const cases: [string, string, Uint8Array, { destination: string; error: RegExp } | { unreadable: RegExp }][] = [
      ["binary garbage", key("garbage"), Buffer.from(GARBAGE), { destination: "hostile/garbage@main", error: /decrypt: / }],
      ["an empty object", key("empty"), new Uint8Array(), { destination: "hostile/empty@main", error: /decrypt: / }],
      ["sealed to another key", key("other"), await seal(Buffer.from("x"), other), { destination: "hostile/other@main", error: /decrypt: / }],
      ["a truncated age file", key("truncated"), (await seal(tarGz)).subarray(0, 100), { destination: "hostile/truncated@main", error: /decrypt: / }],
      ["sealed garbage that is no tar", key("notar"), await seal(Buffer.from(GARBAGE)), { destination: "hostile/notar@main", error: /extract: / }],
      ["a gzip that is no tar", key("gznotar"), await seal(tarGz), { destination: "hostile/gznotar@main", error: /extract: / }],
      [
        "a bundle that is garbage",
        key("badbundle", { format: "Bundle", baseSha: base }),
        await seal(Buffer.from(GARBAGE)),
        { destination: "hostile/badbundle@main", error: /extract: .*not a git bundle that applies/ },
      ],
      ["a key that is no base64 JSON", "!!!not-base64!!!.tar.age", Buffer.from("x"), { unreadable: /is not base64 of JSON/ }],
      ["a key with an unknown suffix", `${key("suffix").split(".")[0]}.zip`, Buffer.from("x"), { unreadable: /unknown suffix \.zip/ }],
      [
        "a key with a short commit",
        raw({ group: "hostile", project_name: "short", commit_sha: "abc", local_branch: "main", remote_branch: "main" }),
        Buffer.from("x"),
        { unreadable: /commit_sha is not a full commit id/ },
      ],
      [
        "a group that climbs out",
        raw({ group: "../open", project_name: "app", commit_sha: commit, local_branch: "main", remote_branch: "main" }),
        Buffer.from("x"),
        { unreadable: /group "\.\.\/open" is not a group path/ },
      ],
      [
        "a project with a slash",
        raw({ group: "hostile", project_name: "a/../../b", commit_sha: commit, local_branch: "main", remote_branch: "main" }),
        Buffer.from("x"),
        { unreadable: /project_name "a\/\.\.\/\.\.\/b" is not a project name/ },
      ],
      [
        "a branch that is no ref",
        raw({ group: "hostile", project_name: "ref", commit_sha: commit, local_branch: "main", remote_branch: "../../HEAD" }),
        Buffer.from("x"),
        { unreadable: /remote_branch "\.\.\/\.\.\/HEAD"/ },
      ],
      [
        "a branch with a space",
        raw({ group: "hostile", project_name: "space", commit_sha: commit, local_branch: "main", remote_branch: "a b" }),
        Buffer.from("x"),
        { unreadable: /remote_branch "a b" holds a space/ },
      ],
      [
        "a group that is empty",
        raw({ group: "", project_name: "x", commit_sha: commit, local_branch: "main", remote_branch: "main" }),
        Buffer.from("x"),
        { unreadable: /lacks group/ },
      ],
      ["fields that are numbers", raw({ group: 1, project_name: 2, commit_sha: commit, branch: 3 }), Buffer.from("x"), { unreadable: /lacks group/ }],
    ];
    for (const [, k, body] of cases) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `in/${k}`, Body: body }));
    const before = env().git.requests.filter((r) => r.service === "git-receive-pack" && r.method === "POST").length;
    await apply(partitionSyncKind as never, "consumer", {
      role: "Consumer",
      interval: "30s",
      bucket: { endpoint: env().s3.endpoint, bucket, prefix: "in/", insecure: true, forcePathStyle: true, region: "us-east-1", secretRef: { name: "s3" } },
      destination: { baseUrl: env().git.baseUrl, secretRef: { name: "git" } },
      identitySecretRef: { name: "age" },
    });
    await eventually(
      async () => {
        const status = (await get(partitionSyncKind as never, "consumer")).status as PartitionSyncStatus | undefined;
        for (const [name, k, , expected] of cases) {
          if ("unreadable" in expected) {
            const entry = status?.unreadableKeys?.find((u) => u.startsWith(`in/${k}: `));
            assert.match(
              entry ?? "",
              expected.unreadable,
              `${name}: in/${k} is not named unreadable with its reason: ${JSON.stringify(status?.unreadableKeys)}`,
            );
          } else {
            const repo = status?.repos?.find((r) => r.destination === expected.destination);
            assert.match(repo?.error ?? "", expected.error, `${name}: ${JSON.stringify(repo)}`);
          }
        }
      },
      60_000,
      500,
    );
    assert.ok(cases.length >= 15);
    const after = env().git.requests.filter((r) => r.service === "git-receive-pack" && r.method === "POST").length;
    assert.equal(after, before, "nothing was pushed anywhere");
    assert.ok(operator.isRunning());
  });

  it("DatasetAdvert: hostile values and keys in etcd are listed as unreadable, never imported, and the advert stays Ready", async () => {
    const datasets = env().datasets;
    if (!datasets) throw new Error("the environment runs no datasets etcd");
    const prefix = "/gitsync/datasets";
    const date = new Date().toISOString().slice(0, 10);
    const valid = (fields: Record<string, unknown>): string =>
      JSON.stringify({ url: env().git.url("hostile-data"), hub: "hostile", operator: "x", commit: "4".repeat(40), ...fields });
    const values: [string, string, string][] = [
      ["binary garbage", `${prefix}/hostile/${date}/garbage`, GARBAGE],
      ["JSON that is not an object", `${prefix}/hostile/${date}/array`, "[1,2,3]"],
      ["a broken JSON object", `${prefix}/hostile/${date}/broken`, '{"url": '],
      ["a url as a number", `${prefix}/hostile/${date}/number`, JSON.stringify({ url: 5, hub: "hostile", operator: "number" })],
      ["a commit that is no commit id", `${prefix}/hostile/${date}/commit`, valid({ commit: "--upload-pack=touch /tmp/pwned" })],
      ["a hub that climbs out in the value", `${prefix}/hostile/${date}/climb`, valid({ hub: "../../../tmp/pwned", operator: "../x" })],
      ["a file:// url", `${prefix}/hostile/${date}/file`, valid({ url: "file:///etc" })],
      ["an ext:: url", `${prefix}/hostile/${date}/ext`, valid({ url: "ext::sh -c touch% /tmp/pwned" })],
      ["tags that are no strings", `${prefix}/hostile/${date}/tags`, valid({ tags: { a: { b: 1 } } })],
      ["a 1 MiB description", `${prefix}/hostile/${date}/huge`, valid({ description: "d".repeat(1 << 20) })],
      ["a key with a hub of ..", `${prefix}/../${date}/dots`, valid({})],
      ["a key with a date that is no date", `${prefix}/hostile/yesterday/nodate`, valid({})],
      ["a key with an extra segment", `${prefix}/hostile/${date}/a/b`, valid({})],
      ["a key with an empty operator", `${prefix}/hostile/${date}/`, valid({})],
      ["a key with a hidden operator", `${prefix}/hostile/${date}/.hidden`, valid({})],
      ["a JSON value with __proto__", `${prefix}/hostile/${date}/proto`, '{"url":"x","hub":"hostile","operator":"proto","__proto__":{"polluted":"yes"}}'],
    ];
    assert.ok(values.length >= 15);
    const client = datasets.client(datasets.root);
    try {
      for (const [, k, v] of values) await client.put(k).value(v).exec();
    } finally {
      client.close();
    }
    env().git.createRepo("hostile-data", { "data.csv": "a,b\n1,2\n" });
    await createSecret(ns, "etcd", { username: datasets.operator.username, password: datasets.operator.password, "ca.crt": datasets.caCert });
    await apply(datasetAdvertKind as never, "dsa", {
      interval: "30s",
      hub: "hostile",
      operator: "good",
      ttl: "1h",
      source: sourceOf("hostile-data"),
      etcd: { endpoints: [datasets.endpoint], secretRef: { name: "etcd" } },
    });
    await eventually(
      async () => {
        const ready = (await get(datasetAdvertKind as never, "dsa")).status?.conditions?.find((c) => c.type === "Ready");
        assert.equal(ready?.status, "True", ready?.message);
      },
      60_000,
      500,
    );
    const cli = (args: string[]) =>
      runGitsync(["dataset", ...args], {
        ...process.env,
        ETCD_ENDPOINTS: datasets.endpoint,
        ETCD_USERNAME: datasets.operator.username,
        ETCD_PASSWORD: datasets.operator.password,
        ETCD_CACERT: datasets.caFile,
        GIT_USERNAME: env().git.username,
        GIT_TOKEN: env().git.password,
      });
    const listed = await cli(["ls", `hostile/${date}`, "--output", "json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const operators = (JSON.parse(listed.stdout) as { key: string; url: string }[]).map((a) => a.key.split("/").at(-1));
    assert.ok(operators.includes("good"), listed.stdout.slice(0, 500));
    const work = mkdtempSync(path.join(os.tmpdir(), "hostile-import-"));
    const imports = path.join(work, "imports");
    mkdirSync(imports);
    const config = path.join(work, "config.ini");
    writeFileSync(config, `[WORKING_ENVIRONMENT]\nIMPORTDIR = ${imports}\n`);
    for (const name of ["garbage", "array", "broken", "number", "commit", "climb", "file", "ext", "tags", "proto"]) {
      const imported = await cli(["import", "--config", config, `hostile/${date}/${name}`]);
      assert.notEqual(imported.code, 0, `${name}: imported`);
      assert.match(imported.stderr, new RegExp(`hostile/${date}/${name}`), `${name}: ${imported.stderr}`);
      assert.doesNotMatch(imported.stderr, /\n\s+at /, `${name}: a stack trace`);
    }
    assert.deepEqual(readdirSync(work).sort(), ["config.ini", "imports"], "nothing was written outside IMPORTDIR");
    assert.deepEqual(readdirSync(imports), [], "nothing was imported");
    assert.ok(!existsSync("/tmp/pwned"));
    assert.ok(operator.isRunning());
  });
});
