// A Prometheus server (built by hack/tools.sh) scraping the operator every second with the
// chart's alerting rules loaded: the demo's, and the monitoring e2e's. It scrapes either fixed
// addresses (an operator out of the cluster) or the operator's pods, found through the API
// server (kubernetes_sd) and reached on their pod addresses, as a ServiceMonitor would.

import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stringify } from "yaml";
import { ManagedProcess, portOpen } from "./processes.js";

export const ALERTING_RULES = path.resolve(import.meta.dirname, "../../../deploy/helm/gitsync-operator/files/alerts.yaml");

export interface PrometheusOptions {
  binary: string;
  dir: string;
  port: number;
  /** host:port of operators out of the cluster, or the namespace and kubeconfig of its pods. */
  scrape: { targets: string[] } | { namespace: string; kubeconfig: string };
}

export class Prometheus {
  readonly url: string;
  private readonly process: ManagedProcess;

  private constructor(options: PrometheusOptions) {
    this.url = `http://127.0.0.1:${options.port}`;
    mkdirSync(options.dir, { recursive: true });
    const config = path.join(options.dir, "prometheus.yml");
    writeFileSync(
      config,
      stringify({
        global: { scrape_interval: "1s", evaluation_interval: "1s" },
        rule_files: [ALERTING_RULES],
        scrape_configs: [{ job_name: "gitsync-operator", ...scrapeTargets(options.scrape) }],
      }),
    );
    this.process = new ManagedProcess(
      "prometheus",
      options.binary,
      [`--config.file=${config}`, `--storage.tsdb.path=${path.join(options.dir, "data")}`, `--web.listen-address=127.0.0.1:${options.port}`],
      options.dir,
    );
  }

  static async start(options: PrometheusOptions): Promise<Prometheus> {
    const prometheus = new Prometheus(options);
    prometheus.process.start();
    await prometheus.process.waitUntil(async () => (await portOpen(options.port)) && (await fetch(`${prometheus.url}/-/ready`)).ok, 60_000);
    return prometheus;
  }

  /** An instant query's result; throws with Prometheus's error for a query it refuses. */
  async query<T>(expr: string): Promise<T[]> {
    const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; data: { result: T[] }; error?: string };
    if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
    return body.data.result;
  }

  async alerts(): Promise<{ labels: Record<string, string>; state: string }[]> {
    const body = (await (await fetch(`${this.url}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } };
    return body.data.alerts;
  }

  stop(): Promise<void> {
    return this.process.stop();
  }
}

function scrapeTargets(scrape: PrometheusOptions["scrape"]): Record<string, unknown> {
  if ("targets" in scrape) return { static_configs: [{ targets: scrape.targets }] };
  return {
    kubernetes_sd_configs: [{ role: "pod", kubeconfig_file: scrape.kubeconfig, namespaces: { names: [scrape.namespace] } }],
    relabel_configs: [
      { source_labels: ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], regex: "gitsync-operator", action: "keep" },
      { source_labels: ["__meta_kubernetes_pod_container_port_name"], regex: "http", action: "keep" },
      { source_labels: ["__meta_kubernetes_pod_name"], target_label: "instance" },
    ],
  };
}
