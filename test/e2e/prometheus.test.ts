// The chart's monitoring, checked by Prometheus itself (v0.316.0, built from its Go module by
// hack/tools.sh): promtool checks and unit-tests the alerting rules and parses every dashboard
// query; then a real Prometheus scrapes the real operator, an alert goes pending for a resource
// that fails, and every dashboard panel's query returns data.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { S3Client } from "@aws-sdk/client-s3";
import { parseAllDocuments, stringify } from "yaml";
import { freePort } from "../../hack/env/processes.js";
import { ALERTING_RULES as ALERTS, Prometheus } from "../../hack/env/prometheus.js";
import { BackupBucket } from "./fixtures/backups.js";
import { eventually, OperatorProcess } from "./helpers.js";
import { adminS3, createSecret, env, kubectlOk, ROOT } from "./setup.js";

const run = promisify(execFile);
const CHART = path.join(ROOT, "deploy/helm/gitsync-operator");
const NS = "prometheus-e2e";

interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
}

const dashboard = (): Dashboard => JSON.parse(readFileSync(path.join(CHART, "files/dashboard.json"), "utf8")) as Dashboard;
const queries = (): { title: string; expr: string }[] => dashboard().panels.flatMap((p) => p.targets.map((t) => ({ title: p.title, expr: t.expr })));

function tool(name: "promtool" | "prometheus" | "helm"): string {
  const binary = env().tools[name];
  assert.ok(binary, `hack/tools.sh builds ${name}`);
  return binary;
}

/** promtool's exit code and output; a failing check is a result here, not an exception. */
async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(tool("promtool"), args, { cwd: ROOT });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

describe("monitoring: alerting rules and dashboard, checked by a real Prometheus", function () {
  it("passes promtool check rules and promtool test rules, firing and not", async () => {
    const checked = await promtool("check", "rules", ALERTS);
    assert.equal(checked.code, 0, checked.output);
    assert.match(checked.output, /SUCCESS: 5 rules found/);
    const tested = await promtool("test", "rules", "test/prometheus/alerts.test.yaml");
    assert.equal(tested.code, 0, tested.output);
    // The tests can fail: a rule that fires too early breaks them.
    const broken = mkdtempSync(path.join(os.tmpdir(), "gitsync-rules-"));
    writeFileSync(path.join(broken, "alerts.yaml"), readFileSync(ALERTS, "utf8").replace("for: 15m", "for: 1m"));
    const testFile = readFileSync(path.join(ROOT, "test/prometheus/alerts.test.yaml"), "utf8").replace(
      "../../deploy/helm/gitsync-operator/files/alerts.yaml",
      "alerts.yaml",
    );
    writeFileSync(path.join(broken, "alerts.test.yaml"), testFile);
    const failing = await promtool("test", "rules", path.join(broken, "alerts.test.yaml"));
    assert.notEqual(failing.code, 0, "a rule changed to fire after 1 m fails its test");
  });

  it("parses every dashboard query, and the chart ships the rules and the dashboard when asked", async () => {
    // Each panel's query as a recording rule: promtool parses every one.
    const rules = { groups: [{ name: "dashboard", rules: queries().map((q, i) => ({ record: `gitsync:dashboard_panel_${i}`, expr: q.expr })) }] };
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "gitsync-dashboard-")), "queries.yaml");
    writeFileSync(file, stringify(rules));
    const checked = await promtool("check", "rules", file);
    assert.equal(checked.code, 0, checked.output);
    assert.match(checked.output, new RegExp(`SUCCESS: ${queries().length} rules found`));

    const set = ["metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "metrics.dashboard.enabled=true"].flatMap((s) => ["--set", s]);
    const { stdout } = await run(tool("helm"), ["template", "gitsync", CHART, "--namespace", "gitsync-system", ...set], { maxBuffer: 16 << 20 });
    const docs = parseAllDocuments(stdout).map(
      (d) => d.toJS() as { kind: string; metadata: { labels?: Record<string, string> }; spec?: unknown; data?: Record<string, string> },
    );
    const rule = docs.find((d) => d.kind === "PrometheusRule");
    assert.deepEqual(rule?.spec, parseAllDocuments(readFileSync(ALERTS, "utf8"))[0]?.toJS(), "the PrometheusRule holds files/alerts.yaml");
    const board = docs.find((d) => d.kind === "ConfigMap" && d.metadata.labels?.grafana_dashboard === "1");
    assert.deepEqual(JSON.parse(board?.data?.["gitsync-operator.json"] ?? "{}"), dashboard());
    assert.ok(docs.some((d) => d.kind === "ServiceMonitor"));
    const plain = await run(tool("helm"), ["template", "gitsync", CHART, "--namespace", "gitsync-system"], { maxBuffer: 16 << 20 });
    assert.doesNotMatch(plain.stdout, /kind: (ServiceMonitor|PrometheusRule)|grafana_dashboard/, "all three are off by default");
  });

  describe("a real Prometheus scraping the real operator", function () {
    let operator: OperatorProcess;
    let prometheus: Prometheus;
    let s3: S3Client;

    before(async function () {
      this.timeout(120_000);
      s3 = adminS3();
      await kubectlOk(["create", "namespace", NS]);
      await createSecret(NS, "s3", { accesskey: env().s3.accessKey, secretkey: env().s3.secretKey });
      await createSecret(NS, "s3-wrong", { accesskey: env().s3.accessKey, secretkey: "wrong-secret-for-prometheus-e2e" });
      await createSecret(NS, "git", { username: env().git.username, password: env().git.password });
      operator = OperatorProcess.start({ entry: "gitsync" });
      const target = await operator.httpAddress();
      prometheus = await Prometheus.start({
        binary: tool("prometheus"),
        dir: path.join(env().dir, "prometheus"),
        port: await freePort(),
        scrape: { targets: [target] },
      });
    });

    after(async () => {
      await prometheus?.stop();
      await operator?.stop();
      s3?.destroy();
      await kubectlOk(["delete", "namespace", NS, "--wait=false"]);
    });

    function backup(name: string, s3Secret: string): Promise<string> {
      const spec = {
        interval: "5s",
        source: { endpoint: env().s3.endpoint, bucket: name, insecure: true, secretRef: { name: s3Secret } },
        destination: { url: env().git.url(name), branch: "main", secretRef: { name: "git" } },
      };
      return kubectlOk(
        ["apply", "-f", "-"],
        stringify({ apiVersion: "gitsync.dev/v1beta1", kind: "ClusterBackupSync", metadata: { name, namespace: NS }, spec }),
      );
    }

    it("puts the not-Ready alert in pending for a resource that fails", async function () {
      this.timeout(120_000);
      await BackupBucket.create(s3, "prom-fine");
      env().git.createRepo("prom-fine", { "README.md": "backups\n" });
      await BackupBucket.create(s3, "prom-broken");
      env().git.createRepo("prom-broken");
      await backup("prom-fine", "s3");
      await backup("prom-broken", "s3-wrong");
      const pending = await eventually(
        async () => {
          const alerts = await prometheus.alerts();
          const alert = alerts.find((a) => a.labels.alertname === "GitsyncResourceNotReady" && a.labels.name === "prom-broken");
          assert.equal(alert?.state, "pending", JSON.stringify(alerts));
          return alerts;
        },
        60_000,
        500,
      );
      assert.ok(!pending.some((a) => a.labels.name === "prom-fine"), "the resource that syncs raises nothing");
      const [up] = await prometheus.query<{ value: [number, string] }>('up{job="gitsync-operator"}');
      assert.equal(up?.value[1], "1");
    });

    it("returns data for every dashboard panel's query", async function () {
      this.timeout(120_000);
      for (const { title, expr } of queries()) {
        await eventually(async () => assert.ok((await prometheus.query(expr)).length > 0, `${title}: ${expr} returned no data`), 60_000, 1_000);
      }
      const [bytes] = await prometheus.query<{ value: [number, string] }>("sum(gitsync_git_fetch_bytes_total)");
      assert.ok(Number(bytes?.value[1]) > 0, "the working backup's clone was counted in bytes");
    });
  });
});
