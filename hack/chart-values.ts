// The chart's values, stated once: the zod schema below is where each value, its type, its
// default and its documentation live. hack/gen-crds.ts writes from it the chart's values.yaml
// (defaults with the documentation as comments), values.schema.json (which Helm checks on
// install, upgrade, template and lint, naming the key that is wrong) and the README's table.

import { stringify } from "yaml";
import { z } from "zod";
import { DURATION_PATTERN } from "../src/util/duration.js";

const duration = z.string().regex(new RegExp(DURATION_PATTERN));
/** A free-form Kubernetes structure (affinity, a securityContext, resources): the API server checks it. */
const structure = z.record(z.string(), z.unknown());
/** A group of values: a block in values.yaml, whose absent keys take their defaults. */
const group = <Shape extends z.ZodRawShape>(shape: Shape) => z.strictObject(shape).prefault({} as z.input<z.ZodObject<Shape, z.core.$strict>>);

export const chartValues = z.strictObject({
  crds: group({
    install: z
      .boolean()
      .default(true)
      .describe(
        "Install and upgrade the five CRDs with the chart (templates, so that helm upgrade brings them to the chart's version). False: you apply deploy/crds yourself, before the chart.",
      ),
    keep: z
      .boolean()
      .default(true)
      .describe(
        "helm uninstall leaves the CRDs, and with them every object of the five kinds (helm.sh/resource-policy: keep). False: uninstall deletes them, and every object.",
      ),
  }),
  image: group({
    repository: z.string().min(1).default("gitsync-operator").describe("The operator's image."),
    tag: z.string().default("").describe("Default: the chart's appVersion."),
    pullPolicy: z
      .enum(["Always", "IfNotPresent", "Never"])
      .default("IfNotPresent")
      .describe("Never for an image imported into the node, as the e2e suite and the demo do."),
  }),
  nameOverride: z.string().max(63).optional().describe("The name of every object the chart makes; default the chart's name."),
  replicas: z.int().min(1).max(100).default(2).describe("With sharding each replica reconciles its share; without, one leads and the others stand by."),
  sharding: z
    .boolean()
    .default(true)
    .describe(
      "Share the objects out across the replicas (ADR 0012): each holds a Lease in the ring, the leader labels every object with its owner (gitsync.dev/shard), and a replica watches only its own label. Off: one replica (the leader) reconciles everything.",
    ),
  leaderElection: group({
    leaseDuration: duration.default("15s").describe("How long a dead replica holds its share (and the leader its lead) before the others take it."),
    renewDeadline: duration.default("10s").describe("A leader that could not renew for this long steps down; shorter than leaseDuration."),
    retryPeriod: duration.default("2s").describe("How often the Leases are renewed and watched."),
  }),
  logLevel: z.enum(["error", "warn", "info", "debug"]).default("info").describe("The operator's JSON log lines at this level and above."),
  shutdownTimeout: duration.default("30s").describe("How long SIGTERM waits for running reconciles."),
  service: group({
    port: z.int().min(1).max(65535).default(8080).describe("/metrics, /healthz, /readyz, /hooks/git."),
  }),
  nodeOptions: z
    .string()
    .default("--max-semi-space-size=2 --no-concurrent-recompilation --optimize-for-size")
    .describe(
      "Node.js flags of the operator process. A 2 MiB young generation (the default is 16 MiB) cuts its peak RSS by about a quarter at no cost in time (bench/fleet.ts; README, Performance). Optimising compilation on the main thread, not on V8's worker threads, keeps the compilers' scratch memory out of per-thread malloc arenas: 6 MiB less on a first sync, 22 MiB less on a backup of 10,000 objects, with the same CPU time (ADR 0011). V8's memory-for-speed trade (--optimize-for-size) keeps the old generation's growth small: a 1,000-resource fleet peaks about 15 MiB lower and a backup of 10,000 objects about 40 MiB lower, for about a sixth more CPU. They are given on the node command line, since NODE_OPTIONS refuses these flags.",
    ),
  aws: group({
    objectIdentity: z
      .boolean()
      .default(true)
      .describe(
        "Allow serviceAccountName on S3 locations (RBAC: get serviceaccounts, create serviceaccounts/token). Off: every object with provider aws acts as the operator.",
      ),
    roleArn: z
      .string()
      .default("")
      .describe(
        "The operator's own role: a projected token (audience sts.amazonaws.com) is mounted and AWS_ROLE_ARN set, as EKS's webhook does. Leave empty where the webhook runs.",
      ),
    region: z.string().default("").describe("AWS_REGION."),
    stsEndpoint: z.string().default("").describe("AWS_ENDPOINT_URL_STS: a private STS, or MinIO's."),
  }).describe(
    "S3 credentials without static keys (README, S3 credentials). A location with provider: aws and no keys in its Secret acts as the operator's own identity (the AWS SDK's default chain), or as a ServiceAccount of its own namespace.",
  ),
  proxy: group({
    https: z.string().default("").describe("HTTPS_PROXY: for https:// and SSH (CONNECT)."),
    http: z.string().default("").describe("HTTP_PROXY: for http://."),
    noProxy: z.string().default("").describe("NO_PROXY, e.g. .svc,.cluster.local,10.0.0.0/8."),
  }).describe("Proxies for git (HTTP and SSH), S3 and STS. An object's proxySecretRef takes precedence."),
  extraEnv: z.array(structure).default([]).describe("More environment variables for the operator container (EnvVar objects)."),
  resources: structure
    .default({ requests: { cpu: "100m", memory: "192Mi" }, limits: { memory: "512Mi" } })
    .describe(
      "Measured (README, Performance): a replica with 1,000 resources peaks at 102-113 MiB and uses about 10 CPU-seconds a minute at steady state (0.17 cores); a first backup of 10,000 objects peaks at 114-118 MiB. The request covers that with headroom; the limit leaves room for bursts without letting a runaway take the node.",
    ),
  podDisruptionBudget: group({
    enabled: z.boolean().default(true),
    maxUnavailable: z.int().min(1).default(1),
  }).describe("One replica at a time may be taken by a voluntary disruption (drain, upgrade); only with replicas > 1."),
  networkPolicy: group({
    enabled: z.boolean().default(false),
    from: z
      .array(structure)
      .default([])
      .describe("NetworkPolicyPeers, e.g. [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]; empty admits nobody."),
  }).describe("Admit only the metrics scraper and the webhook senders to the operator's port. Egress (API server, git, S3, STS, etcd) is not restricted."),
  podSecurityContext: structure.default({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } }).describe("The pod's securityContext."),
  securityContext: structure
    .default({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } })
    .describe("The operator container's securityContext."),
  nodeSelector: z.record(z.string(), z.string()).default({}).describe("The pod's nodeSelector."),
  tolerations: z.array(structure).default([]).describe("The pod's tolerations."),
  affinity: structure.default({}).describe("The pod's affinity."),
  metrics: group({
    serviceMonitor: group({ enabled: z.boolean().default(false), interval: duration.default("30s"), labels: z.record(z.string(), z.string()).default({}) }),
    prometheusRule: group({ enabled: z.boolean().default(false), labels: z.record(z.string(), z.string()).default({}) }),
    dashboard: group({ enabled: z.boolean().default(false) }),
  }).describe(
    "Monitoring, each part optional (README, Monitoring). The ServiceMonitor and PrometheusRule need the Prometheus Operator's CRDs; the dashboard ConfigMap carries the grafana_dashboard label that Grafana's sidecar picks up.",
  ),
  global: structure.optional().describe("Values a parent chart shares with its subcharts; unused here."),
});

const HEADER = "# Generated by hack/gen-crds.ts from hack/chart-values.ts. Do not edit.\n";

/** values.schema.json: the values as Helm reads them (every key optional, since values.yaml supplies the defaults). */
export function valuesSchema(): string {
  return `${JSON.stringify(z.toJSONSchema(chartValues, { target: "draft-7", io: "input", unrepresentable: "any" }), null, 2)}\n`;
}

interface Entry {
  path: string[];
  description?: string;
  /** A group of values (a block in values.yaml), or a value. */
  children?: Entry[];
  value?: unknown;
}

/** The values as a tree, with their defaults and documentation. */
function entries(schema: z.ZodObject, defaults: Record<string, unknown>, path: string[] = []): Entry[] {
  return Object.entries(schema.shape).flatMap(([key, field]): Entry[] => {
    const type = field as z.ZodType;
    if (!(key in defaults)) return [];
    const inner = unwrap(type);
    const description = type.description ?? inner.description;
    const at = [...path, key];
    if (inner instanceof z.ZodObject && inner.def.catchall instanceof z.ZodNever) {
      return [{ path: at, description, children: entries(inner, defaults[key] as Record<string, unknown>, at) }];
    }
    return [{ path: at, description, value: defaults[key] }];
  });
}

function unwrap(type: z.ZodType): z.ZodType {
  let current = type;
  while (current instanceof z.ZodDefault || current instanceof z.ZodPrefault || current instanceof z.ZodOptional) current = current.def.innerType as z.ZodType;
  return current;
}

const defaults = (): Record<string, unknown> => chartValues.parse({});

/** values.yaml: every default, each under its documentation. */
export function valuesYaml(): string {
  const lines: string[] = [];
  const write = (list: Entry[], indent: string): void => {
    for (const entry of list) {
      if (entry.description) for (const line of wrap(entry.description, 96 - indent.length)) lines.push(`${indent}# ${line}`);
      const key = entry.path.at(-1) ?? "";
      if (entry.children) {
        lines.push(`${indent}${key}:`);
        write(entry.children, `${indent}  `);
      } else {
        lines.push(`${indent}${key}: ${stringify(entry.value, { collectionStyle: "flow", lineWidth: 0 }).trim()}`);
      }
      if (!indent) lines.push("");
    }
  };
  write(entries(chartValues, defaults()), "");
  return HEADER + lines.join("\n");
}

/** The README's table of values: key, default and description of every value. */
export function valuesTable(): string {
  const rows: string[] = ["| value | default | what it does |", "|---|---|---|"];
  const walk = (list: Entry[], inherited?: string): void => {
    for (const entry of list) {
      if (entry.children) walk(entry.children, entry.description);
      else {
        const value = stringify(entry.value, { collectionStyle: "flow", lineWidth: 0 }).trim();
        const description = (entry.description ?? (entry.path.length > 1 ? inherited : undefined) ?? "").replace(/\|/g, "\\|");
        rows.push(`| \`${entry.path.join(".")}\` | \`${value}\` | ${description} |`);
      }
    }
  };
  walk(entries(chartValues, defaults()));
  return `${rows.join("\n")}\n`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
