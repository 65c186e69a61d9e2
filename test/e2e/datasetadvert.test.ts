// DatasetAdvert end to end: dataset repos on the git server, the second etcd of the
// environment (client TLS, auth, the operator's role limited to the prefix), the real
// operator binary, and `gitsync dataset` as a person or a script runs it.

import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { datasetAdvertKind, type DatasetAdvertSpec, type DatasetAdvertStatus } from "../../src/crds/datasetadvert.js";
import { resourceOf, resourcePath, type KubeClient, type KubeList } from "../../src/runtime/kube.js";
import type { DatasetEtcd } from "../../hack/env/dataset-etcd.js";
import { argoHealth } from "./argo.js";
import { eventually, OperatorProcess, runGitsync } from "./helpers.js";
import { waitForReady } from "./kstatus.js";
import { adminClient, createSecret, env, kubectlOk, ROOT } from "./setup.js";

interface Dsa {
  metadata: { generation: number };
  status?: DatasetAdvertStatus;
}

const today = (): string => new Date().toISOString().slice(0, 10);

function etcd(): DatasetEtcd {
  const datasets = env().datasets;
  if (!datasets) throw new Error("the environment runs no datasets etcd");
  return datasets;
}

/** The CLI with the environment a user exports: etcd as the operator's user, git credentials. */
function gitsync(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const e = etcd();
  return runGitsync(["dataset", ...args], {
    ...process.env,
    ETCD_ENDPOINTS: e.endpoint,
    ETCD_USERNAME: e.operator.username,
    ETCD_PASSWORD: e.operator.password,
    ETCD_CACERT: e.caFile,
    GIT_USERNAME: env().git.username,
    GIT_TOKEN: env().git.password,
    ...extraEnv,
  });
}

/** What etcd holds under a key, read as root. */
async function stored(key: string): Promise<{ value: Record<string, unknown>; lease: string } | undefined> {
  const client = etcd().client(etcd().root);
  try {
    const kv = (await client.get(key).exec()).kvs[0];
    return kv ? { value: JSON.parse(kv.value.toString()) as Record<string, unknown>, lease: String(kv.lease) } : undefined;
  } finally {
    client.close();
  }
}

describe("DatasetAdvert (real operator, etcd with TLS and auth, git server)", function () {
  let kube: KubeClient;
  let operator: OperatorProcess;
  const ns = "dsa-e2e";
  const prefix = "/gitsync/datasets";

  before(async () => {
    kube = adminClient();
    await kubectlOk(["create", "namespace", ns]);
    const e = etcd();
    await createSecret(ns, "etcd", { username: e.operator.username, password: e.operator.password, "ca.crt": e.caCert });
    await createSecret(ns, "etcd-wrong", { username: e.operator.username, password: "not-the-etcd-password-55", "ca.crt": e.caCert });
    await createSecret(ns, "git", { username: env().git.username, password: env().git.password });
    operator = OperatorProcess.start({ entry: "gitsync" });
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") process.stderr.write(`\nOperator log:\n${operator.lines.slice(-40).join("\n")}\n`);
  });

  after(async () => {
    await operator.stop();
    kube.close();
  });

  const get = (name: string): Promise<Dsa> => kube.request<Dsa>("GET", resourcePath(resourceOf(datasetAdvertKind), ns, name));
  const ready = (d: Dsa): { status: string; reason: string; message: string } | undefined => d.status?.conditions?.find((c) => c.type === "Ready");

  function apply(name: string, spec: Partial<DatasetAdvertSpec> & { hub: string; source: DatasetAdvertSpec["source"] }, secret = "etcd"): Promise<string> {
    const doc = {
      apiVersion: "gitsync.dev/v1beta1",
      kind: "DatasetAdvert",
      metadata: { name, namespace: ns },
      spec: { interval: "2s", etcd: { endpoints: [etcd().endpoint], secretRef: { name: secret } }, ttl: "1h", ...spec },
    };
    return kubectlOk(["apply", "-f", "-"], stringify(doc));
  }

  const waitFor = (name: string, status: string, reason: string, timeoutMs = 30_000): Promise<Dsa> => waitForReady(() => get(name), status, reason, timeoutMs);

  const source = (repo: string): DatasetAdvertSpec["source"] => ({ url: env().git.url(repo), ref: { branch: "main" }, secretRef: { name: "git" } });

  it("advertises the repo's head on a lease, as JSON with no credentials, and kubectl shows it", async () => {
    env().git.createRepo("ds-weather", { "README.md": "Weather stations\n", "data/2026.csv": "station,temp\na,1\nb,2\n" });
    await apply("weather", {
      hub: "weather",
      operator: "lab-a",
      source: source("ds-weather"),
      description: "Hourly readings",
      tags: { domain: "climate" },
      license: "CC-BY-4.0",
    });
    const waited = await env().kubectl(["wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "dsa/weather"]);
    assert.equal(waited.code, 0, waited.stderr);
    const dsa = await waitFor("weather", "True", "Advertised");
    const head = env().git.git("ds-weather", "rev-parse", "main");
    const key = `${prefix}/weather/${today()}/lab-a`;
    assert.equal(dsa.status?.key, key);
    assert.equal(dsa.status?.advertisedCommit, head);
    const advert = await stored(key);
    assert.ok(advert, "the key is in etcd");
    assert.notEqual(advert.lease, "0", "attached to a lease");
    assert.equal(advert.lease, dsa.status?.leaseId);
    assert.deepEqual(
      { ...advert.value, publishedAt: undefined },
      {
        url: env().git.url("ds-weather"),
        branch: "main",
        commit: head,
        publishedAt: undefined,
        hub: "weather",
        operator: "lab-a",
        description: "Hourly readings",
        tags: { domain: "climate" },
        license: "CC-BY-4.0",
        files: 2,
        bytes: "Weather stations\n".length + "station,temp\na,1\nb,2\n".length,
      },
    );
    assert.ok(!JSON.stringify(advert.value).includes(env().git.password), "no credentials in the value");
    const table = await kubectlOk(["get", "dsa", "-n", ns, "weather"]);
    assert.match(table.split("\n")[0] ?? "", /^NAME\s+READY\s+HUB\s+OPERATOR\s+COMMIT\s+AGE\s+STATUS$/);
    assert.match(table, new RegExp(`weather\\s+True\\s+weather\\s+lab-a\\s+main@sha1:${head.slice(0, 8)}\\s`));
    assert.equal(argoHealth(datasetAdvertKind, dsa).status, "Healthy");
  });

  it("updates the advert within an interval when the repo gets a new commit", async () => {
    env().git.commitFiles("ds-weather", { "data/2027.csv": "station,temp\nc,3\n" }, "Add 2027");
    const head = env().git.git("ds-weather", "rev-parse", "main");
    const dsa = await eventually(async () => {
      const d = await get("weather");
      assert.equal(d.status?.advertisedCommit, head);
      return d;
    }, 20_000);
    const advert = await stored(dsa.status?.key ?? "");
    assert.equal(advert?.value.commit, head);
    assert.equal(advert?.value.files, 3);
  });

  it("finds, shows and imports the advert with the CLI, at the advertised commit", async () => {
    const head = env().git.git("ds-weather", "rev-parse", "main");
    const hubs = await gitsync(["ls"]);
    assert.equal(hubs.code, 0, hubs.stderr);
    assert.ok(hubs.stdout.split("\n").includes("weather"));
    assert.ok((await gitsync(["ls", "weather"])).stdout.split("\n").includes(today()));
    const adverts = await gitsync(["ls", `weather/${today()}`]);
    assert.match(adverts.stdout, new RegExp(`^weather/${today()}/lab-a\\s+${head.slice(0, 12)}\\s+\\S+\\s+${env().git.url("ds-weather")}$`, "m"));
    const tagged = JSON.parse((await gitsync(["ls", "--tag", "domain=climate", "--output", "json"])).stdout) as { key: string }[];
    assert.deepEqual(
      tagged.map((a) => a.key),
      [`${prefix}/weather/${today()}/lab-a`],
    );
    assert.equal((await gitsync(["ls", "no-such-hub/2020-01-01"])).code, 1, "nothing matched: exit 1");
    const shown = JSON.parse((await gitsync(["show", `weather/${today()}/lab-a`])).stdout) as { commit: string; license: string };
    assert.deepEqual([shown.commit, shown.license], [head, "CC-BY-4.0"]);

    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), "gitsync-import-")), "weather", today(), "lab-a");
    const result = await gitsync(["import", `weather/${today()}/lab-a`, dir]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`at ${head} \\(verified`));
    // Not a terminal: the clone's progress as plain lines on stderr (checkout last).
    assert.match(result.stderr, /^Updating workdir [\d,]+\/[\d,]+ objects/m, result.stderr);
    assert.equal(execFileSync("git", ["-C", dir, "rev-parse", "HEAD"], { encoding: "utf8" }).trim(), head);
    assert.equal(execFileSync("git", ["-C", dir, "show", "HEAD:data/2027.csv"], { encoding: "utf8" }), "station,temp\nc,3\n");
    assert.ok(!execFileSync("git", ["-C", dir, "config", "remote.origin.url"], { encoding: "utf8" }).includes(env().git.password));
  });

  it("reports NameTaken for a second publisher with the same name, and leaves the first advert alone", async () => {
    env().git.createRepo("ds-other", { "x.csv": "1\n" });
    await apply("impostor", { hub: "weather", operator: "lab-a", source: source("ds-other") });
    const taken = await waitFor("impostor", "False", "NameTaken");
    assert.match(ready(taken)?.message ?? "", new RegExp(`${prefix}/weather/${today()}/lab-a is advertised by another publisher`));
    const advert = await stored(`${prefix}/weather/${today()}/lab-a`);
    assert.equal(advert?.value.url, env().git.url("ds-weather"));
    assert.equal(argoHealth(datasetAdvertKind, taken).status, "Degraded");
    await kubectlOk(["delete", "dsa", "-n", ns, "impostor", "--timeout=30s"]);
    assert.ok(await stored(`${prefix}/weather/${today()}/lab-a`), "deleting the impostor did not revoke the first advert");
  });

  it("lists the hub's peers", async () => {
    env().git.createRepo("ds-weather-b", { "b.csv": "2\n" });
    await apply("weather-b", { hub: "weather", operator: "lab-b", source: source("ds-weather-b") });
    await waitFor("weather-b", "True", "Advertised");
    await eventually(async () => assert.deepEqual((await get("weather")).status?.hubPeers, ["lab-b"]));
  });

  it("prints a JSON line for each new advert with dataset watch, and runs --exec for it", async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), "gitsync-watch-"));
    const e = etcd();
    const child = spawn(
      process.execPath,
      [path.join(ROOT, "dist/src/main.js"), "dataset", "watch", "weather", "--exec", `cat > ${out}/hook-$DATASET_COMMIT.json`],
      {
        env: { ...process.env, ETCD_ENDPOINTS: e.endpoint, ETCD_USERNAME: e.operator.username, ETCD_PASSWORD: e.operator.password, ETCD_CACERT: e.caFile },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let lines = "";
    child.stdout.on("data", (chunk: Buffer) => (lines += chunk.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1500)); // the watch is established
      env().git.createRepo("ds-weather-c", { "c.csv": "3\n" });
      await apply("weather-c", { hub: "weather", operator: "lab-c", source: source("ds-weather-c") });
      const line = await eventually(() => {
        const found = lines.split("\n").find((l) => l.includes("/lab-c"));
        assert.ok(found, `no line yet: ${lines}`);
        return JSON.parse(found) as { event: string; key: string; commit: string };
      }, 20_000);
      assert.equal(line.event, "put");
      assert.equal(line.key, `${prefix}/weather/${today()}/lab-c`);
      await eventually(() => assert.match(execFileSync("cat", [path.join(out, `hook-${line.commit}.json`)], { encoding: "utf8" }), /"operator":"lab-c"/));
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("publishes an old-style folder with dataset publish --config config.ini", async () => {
    env().git.createRepo("ds-old", { "readme.txt": "old\n" });
    const work = mkdtempSync(path.join(os.tmpdir(), "gitsync-old-"));
    const folder = path.join(work, "dataset");
    const authUrl = env().git.url("ds-old").replace("://", `://${env().git.username}:${env().git.password}@`);
    // Asynchronous: the git server answers from this very process.
    await promisify(execFile)("git", ["clone", "--quiet", authUrl, folder]);
    await promisify(execFile)("git", ["-C", folder, "remote", "set-url", "origin", env().git.url("ds-old")]);
    writeFileSync(path.join(folder, "measurements.csv"), "t,v\n1,2\n");
    const port = new URL(etcd().endpoint).port;
    writeFileSync(
      path.join(work, "config.ini"),
      `[WORKING_ENVIRONMENT]\nWORKDIR = ${folder}\nOPERATOR = old-lab\nIMPORTDIR = ${work}/imports\n\n[ETCD]\nHOST = https://127.0.0.1\nPORT = ${port}\n`,
    );
    const result = await gitsync(["publish", "--config", path.join(work, "config.ini"), "--hub", "ocean"], { ETCD_ENDPOINTS: "" });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(env().git.git("ds-old", "log", "-1", "--format=%s", "main"), `sync ${today()}`);
    assert.equal(env().git.git("ds-old", "show", "main:measurements.csv"), "t,v\n1,2");
    const advert = await stored(`${prefix}/ocean/${today()}/old-lab`);
    assert.equal(advert?.value.commit, env().git.git("ds-old", "rev-parse", "main"));
    assert.notEqual(advert?.lease, "0", "a one-shot publish expires with its TTL unless published again");
  });

  it("reports EtcdUnavailable while etcd is down, and is Ready again when it is back", async () => {
    await etcd().stop();
    try {
      await kubectlOk(["annotate", "-n", ns, "dsa/weather", `gitsync.dev/requestedAt=${Date.now()}`, "--overwrite"]);
      const down = await waitFor("weather", "False", "EtcdUnavailable", 60_000);
      assert.match(ready(down)?.message ?? "", /etcd at https:\/\/127\.0\.0\.1:\d+/);
    } finally {
      await etcd().start();
    }
    await waitFor("weather", "True", "Advertised", 90_000);
  });

  it("gives a clear error for wrong etcd credentials, with no password anywhere", async () => {
    env().git.createRepo("ds-creds", { "a.csv": "1\n" });
    await apply("creds", { hub: "creds", operator: "lab-x", source: source("ds-creds") }, "etcd-wrong");
    const failed = await waitFor("creds", "False", "EtcdUnavailable", 30_000);
    assert.match(ready(failed)?.message ?? "", /authentication to etcd at https:\/\/127\.0\.0\.1:\d+ failed as user gitsync-operator/);
    const events = await kube.request<KubeList<unknown>>("GET", `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
    const everything = [JSON.stringify(failed), JSON.stringify(events), operator.lines.join("\n")].join("\n");
    for (const secret of ["not-the-etcd-password-55", etcd().operator.password]) assert.ok(!everything.includes(secret), "no password anywhere");
    const cli = await gitsync(["ls"], { ETCD_PASSWORD: "not-the-etcd-password-55" });
    assert.equal(cli.code, 2);
    assert.match(cli.stderr, /authentication to etcd at https:\/\/127\.0\.0\.1:\d+ failed/);
    assert.ok(!cli.stderr.includes("not-the-etcd-password-55"));
  });

  it("removes the key when the resource is deleted", async () => {
    const key = (await get("weather-b")).status?.key ?? "";
    assert.ok(await stored(key));
    await kubectlOk(["delete", "dsa", "-n", ns, "weather-b", "--timeout=30s"]);
    await eventually(async () => assert.equal(await stored(key), undefined), 10_000);
  });

  it("exits on SIGTERM while it holds adverts, and the next operator publishes them on a lease of its own at once", async () => {
    env().git.createRepo("ds-handoff", { "h.csv": "1\n" });
    // An interval of an hour: only publishing on arrival can bring the advert back within its TTL.
    await apply("handoff", { hub: "handoff", operator: "lab-h", source: source("ds-handoff"), ttl: "8s", interval: "1h" });
    const before = await waitFor("handoff", "True", "Advertised");
    const key = before.status?.key ?? "";
    operator.signal("SIGTERM");
    const exit = await Promise.race([operator.exited(), new Promise<undefined>((resolve) => setTimeout(resolve, 40_000, undefined))]);
    assert.equal(exit?.code, 0, `the operator exits by itself, its etcd clients closed: ${operator.lines.slice(-3).join("\n")}`);
    operator = OperatorProcess.start({ entry: "gitsync" });
    const after = await eventually(async () => {
      const dsa = await get("handoff");
      assert.notEqual(dsa.status?.leaseId, before.status?.leaseId, "published on a lease of the new process");
      assert.equal((await stored(key))?.lease, dsa.status?.leaseId);
      return dsa;
    }, 15_000);
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    assert.equal((await stored(key))?.lease, after.status?.leaseId, "still advertised after the 8 s TTL of the first lease");
  });

  it("lets the advert expire after its TTL when the operator is killed", async () => {
    env().git.createRepo("ds-short", { "s.csv": "1\n" });
    await apply("short", { hub: "short", operator: "lab-s", source: source("ds-short"), ttl: "5s" });
    const dsa = await waitFor("short", "True", "Advertised");
    const key = dsa.status?.key ?? "";
    operator.signal("SIGKILL");
    await operator.exited();
    assert.ok(await stored(key), "still advertised right after the kill");
    await eventually(async () => assert.equal(await stored(key), undefined), 30_000, 500);
  });
});
