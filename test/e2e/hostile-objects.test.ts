// Hostile objects of every kind, applied to the real API server with the real operator
// running: each is rejected at admission with a message naming the field, or admitted and
// Stalled with a condition naming it. The operator never restarts.

import assert from "node:assert/strict";
import { stringify } from "yaml";
import { clusterBackupSyncKind } from "../../src/crds/clusterbackupsync.js";
import { composeDeploymentKind } from "../../src/crds/composedeployment.js";
import { datasetAdvertKind } from "../../src/crds/datasetadvert.js";
import { partitionSyncKind } from "../../src/crds/partitionsync.js";
import { serviceHandshakeKind } from "../../src/crds/servicehandshake.js";
import type { KindDefinition } from "../../src/crds/common.js";
import { resourceOf, resourcePath, type KubeClient } from "../../src/runtime/kube.js";
import { eventually, OperatorProcess } from "./helpers.js";
import { adminClient, env, kubectlOk } from "./setup.js";

const ns = "hostile-e2e";

type Spec = Record<string, unknown>;
type Case = [string, Spec, RegExp];

const git = { url: "https://git.example.com/team/repo.git", ref: { branch: "main" } };
const s3 = { endpoint: "https://s3.example.com", bucket: "backups", secretRef: { name: "s3" } };
const with_ = (base: Spec, change: Spec): Spec => ({ ...base, ...change });

const SHS: Spec = { services: [{ source: git }] };
const CBS: Spec = { source: s3, destination: { url: git.url } };
const CDEP: Spec = { source: git };
const PSYNC_RECIPIENT = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq";
const PSYNC: Spec = { role: "Producer", bucket: s3, recipients: [PSYNC_RECIPIENT], repos: [] };
const DSA: Spec = { hub: "weather", source: git, etcd: { endpoints: ["https://etcd.example.com:2379"] } };

/** Field faults every kind shares: its schedule fields and its git source (or its bucket). */
function common(base: Spec, source: "source" | "services" | "destination" | "bucket"): Case[] {
  const onSource = (change: Spec): Spec => {
    if (source === "services") return with_(base, { services: [{ source: { ...git, ...change } }] });
    if (source === "destination") return with_(base, { destination: { ...(base.destination as Spec), ...change } });
    return with_(base, { [source]: { ...(base[source] as Spec), ...change } });
  };
  const cases: Case[] = [
    ["an interval in words", with_(base, { interval: "5 minutes" }), /spec\.interval/],
    ["a negative timeout", with_(base, { timeout: "-1s" }), /spec\.timeout/],
    // A number: kubectl reads YAML 1.1, where an unquoted yes is a boolean.
    ["suspend as a number", with_(base, { suspend: 3 }), /spec\.suspend/],
  ];
  if (source === "bucket")
    return [
      ...cases,
      ["an endpoint that is no URL", onSource({ endpoint: "::::" }), /spec\.bucket\.endpoint/],
      ["a bucket name too short", onSource({ bucket: "ab" }), /spec\.bucket\.bucket/],
      ["insecure as a string", onSource({ insecure: "sometimes" }), /spec\.bucket\.insecure/],
      ["a secretRef with no name", onSource({ secretRef: {} }), /spec\.bucket\.secretRef\.name/],
    ];
  const where = source === "services" ? "spec\\.services\\[0\\]\\.source" : source === "destination" ? "spec\\.destination" : "spec\\.source";
  return [
    ...cases,
    ["a git:// URL", onSource({ url: "git://git.example.com/x.git" }), new RegExp(`${where}\\.url`)],
    ["a URL with spaces", onSource({ url: "https://git.example.com/a b.git" }), new RegExp(`${where}\\.url`)],
    ["an ssh:// URL with no path", onSource({ url: "ssh://git@git.example.com" }), new RegExp(`${where}\\.url`)],
    ...(source === "destination"
      ? []
      : ([
          [
            "a ref with a branch and a tag",
            onSource({ ref: { branch: "main", tag: "v1" } }),
            new RegExp(`${where}\\.ref|exactly one of branch, tag or commit`),
          ],
          ["a short commit id", onSource({ ref: { commit: "abc123" } }), new RegExp(`${where}\\.ref\\.commit`)],
        ] as Case[])),
    ["a secretRef with no name", onSource({ secretRef: {} }), new RegExp(`${where}\\.secretRef\\.name`)],
  ];
}

const CASES: [KindDefinition<never, never>, Case[]][] = [
  [
    serviceHandshakeKind as unknown as KindDefinition<never, never>,
    [
      ...common(SHS, "services"),
      ["no services", { services: [] }, /spec\.services/],
      ["an unknown mode", with_(SHS, { mode: "Sometimes" }), /spec\.mode/],
      ["writeBack as a number", with_(SHS, { writeBack: 1 }), /spec\.writeBack/],
      ["a service without a source", { services: [{ name: "x" }] }, /spec\.services\[0\]\.source/],
      ["a service name as a number", { services: [{ name: 5, source: git }] }, /spec\.services\[0\]\.name/],
      ["501 services", { services: Array.from({ length: 501 }, () => ({ source: git })) }, /spec\.services/],
    ],
  ],
  [
    clusterBackupSyncKind as unknown as KindDefinition<never, never>,
    [
      ...common(CBS, "destination"),
      ["an endpoint that is no URL", with_(CBS, { source: { ...s3, endpoint: "::::" } }), /spec\.source\.endpoint/],
      ["a schedule that is no cron", with_(CBS, { schedule: "every day" }), /spec\.schedule/],
      ["a delete limit over 100", with_(CBS, { maxDeletePercent: 150 }), /spec\.maxDeletePercent/],
      ["a concurrency of 0", with_(CBS, { concurrency: 0 }), /spec\.concurrency/],
      ["a recipient that is no age key", with_(CBS, { encryption: { recipients: ["ssh-rsa AAAA"], include: ["**"] } }), /spec\.encryption\.recipients\[0\]/],
      ["encryption without include", with_(CBS, { encryption: { recipients: [PSYNC_RECIPIENT], include: [] } }), /spec\.encryption\.include/],
      ["include as a string", with_(CBS, { include: "**" }), /spec\.include/],
      ["prune as a number", with_(CBS, { prune: 2 }), /spec\.prune/],
      ["an empty destination branch", with_(CBS, { destination: { url: git.url, branch: "" } }), /spec\.destination\.branch/],
    ],
  ],
  [
    composeDeploymentKind as unknown as KindDefinition<never, never>,
    [
      ...common(CDEP, "source"),
      ["an unknown rollout", with_(CDEP, { rollout: "Sometimes" }), /spec\.rollout/],
      ["a healthTimeout that does not fit", with_(CDEP, { timeout: "1m", healthTimeout: "45s", rollback: true }), /spec\.healthTimeout/],
      ["an empty compose file name", with_(CDEP, { composeFile: "" }), /spec\.composeFile/],
      ["services as a string", with_(CDEP, { services: "web" }), /spec\.services/],
      ["an empty env file name", with_(CDEP, { envFile: "" }), /spec\.envFile/],
      ["dryRun as a number", with_(CDEP, { dryRun: 1 }), /spec\.dryRun/],
      ["a decryption secretRef with no name", with_(CDEP, { decryption: { secretRef: {} } }), /spec\.decryption\.secretRef\.name/],
    ],
  ],
  [
    partitionSyncKind as unknown as KindDefinition<never, never>,
    [
      ...common(PSYNC, "bucket"),
      ["an unknown role", with_(PSYNC, { role: "Both" }), /spec\.role/],
      ["an unknown format", with_(PSYNC, { format: "Zip" }), /spec\.format/],
      ["fullEvery of 0", with_(PSYNC, { fullEvery: 0 }), /spec\.fullEvery/],
      ["a recipient that is no age key", with_(PSYNC, { recipients: ["nope"] }), /spec\.recipients\[0\]/],
      ["a consumer without a destination", with_(PSYNC, { role: "Consumer" }), /Consumer needs destination and identitySecretRef|spec\.destination/],
      ["an unknown push mode", with_(PSYNC, { push: "Sometimes" }), /spec\.push/],
      ["an empty verify key", with_(PSYNC, { verify: [""] }), /spec\.verify\[0\]/],
      ["a repo without a destination", with_(PSYNC, { repos: [{ source: { url: git.url, branch: "main" } }] }), /spec\.repos\[0\]\.destination/],
      [
        "a destination that is no git server",
        { role: "Consumer", bucket: s3, identitySecretRef: { name: "age" }, destination: { baseUrl: "ftp://x" } },
        /spec\.destination\.baseUrl/,
      ],
    ],
  ],
  [
    datasetAdvertKind as unknown as KindDefinition<never, never>,
    [
      ...common(DSA, "source"),
      ["a hub that leaves its folder", with_(DSA, { hub: "../etc" }), /spec\.hub/],
      ["an etcd endpoint with a path", with_(DSA, { etcd: { endpoints: ["https://etcd.example.com:2379/v3"] } }), /spec\.etcd\.endpoints\[0\]/],
      ["no etcd endpoints", with_(DSA, { etcd: { endpoints: [] } }), /spec\.etcd\.endpoints/],
      ["a ttl in words", with_(DSA, { ttl: "a day" }), /spec\.ttl/],
      ["a description of 5,000 characters", with_(DSA, { description: "x".repeat(5000) }), /spec\.description/],
      ["an operator name with a slash", with_(DSA, { operator: "lab/a" }), /spec\.operator/],
      ["an etcd prefix ending in /", with_(DSA, { etcd: { endpoints: ["https://etcd.example.com:2379"], prefix: "/datasets/" } }), /spec\.etcd\.prefix/],
      ["tags as a list", with_(DSA, { tags: ["climate"] }), /spec\.tags/],
    ],
  ],
];

describe("hostile objects of every kind (real API server and operator)", function () {
  let kube: KubeClient;
  let operator: OperatorProcess;

  before(async () => {
    kube = adminClient();
    await kubectlOk(["create", "namespace", ns]);
    operator = OperatorProcess.start({ entry: "gitsync" });
  });

  after(async () => {
    await operator.stop();
    kube.close();
  });

  it("has at least 15 cases per kind", () => {
    for (const [kind, cases] of CASES) assert.ok(cases.length >= 15, `${kind.kind}: ${cases.length} cases`);
  });

  for (const [kind, cases] of CASES) {
    it(`${kind.kind}: rejects each at admission, or stalls naming the field`, async () => {
      const admitted: [string, string, RegExp][] = [];
      const failures: string[] = [];
      for (const [i, [name, spec, field]] of cases.entries()) {
        const objectName = `${kind.singular}-${i}`;
        const doc = stringify({ apiVersion: "gitsync.dev/v1beta1", kind: kind.kind, metadata: { name: objectName, namespace: ns }, spec });
        const applied = await env().kubectl(["apply", "-f", "-"], env().admin, doc);
        if (applied.code !== 0) {
          if (!field.test(applied.stderr)) failures.push(`${name}: rejected, but the message names no ${field}: ${applied.stderr.trim()}`);
        } else admitted.push([name, objectName, field]);
      }
      for (const [name, objectName, field] of admitted) {
        try {
          await eventually(async () => {
            const object = await kube.request<{ status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } }>(
              "GET",
              resourcePath(resourceOf(kind), ns, objectName),
            );
            const stalled = object.status?.conditions?.find((c) => c.type === "Stalled" && c.status === "True");
            assert.ok(stalled, `${name}: not stalled: ${JSON.stringify(object.status?.conditions)}`);
            assert.match(stalled.message, field, name);
          }, 30_000);
        } catch (err) {
          failures.push((err as Error).message.split("\n")[0] ?? name);
        }
      }
      assert.deepEqual(failures, []);
      assert.ok(operator.isRunning(), "the operator is still running");
    });
  }
});
