// The commands for live resources, as `flux` has them: get, reconcile (and wait), suspend,
// resume, events, tree and trace. They read the kubeconfig as kubectl does (KUBECONFIG,
// --kubeconfig, --context, -n, -A, in-cluster) and answer every failure in one line.
//
// Exit codes: 0 done (every object Ready), 1 an object is not Ready or Stalled, 2 a usage or
// access error (no cluster, CRDs not installed, forbidden, not found), 3 timed out waiting.

import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { GROUP, VERSION, type KindDefinition } from "../crds/common.js";
import { kinds } from "../controllers/index.js";
import { KubeApiError, KubeClient, resourceOf, resourcePath, type KubeList, type KubeObject, type ResourceRef } from "../runtime/kube.js";
import { CrdVersionError, migrateStoredVersions, type Migration } from "../runtime/migrate.js";
import { MANAGED_SELECTOR, ownerKey } from "../runtime/owners.js";
import { REQUESTED_AT_ANNOTATION } from "../runtime/reconciler.js";
import { parseDuration } from "../util/duration.js";
import { age, renderTable, resolveKind } from "./table.js";

export type LiveCommand = "get" | "reconcile" | "suspend" | "resume" | "events" | "tree" | "trace" | "migrate";

export const LIVE_USAGE = `Usage:
  gitsync get [KIND[/NAME]] [-n NS | -A] [-o table|wide|json|yaml] [--watch]
  gitsync reconcile KIND/NAME | KIND --all [--timeout 5m] [--no-wait]
  gitsync suspend KIND/NAME | KIND --all
  gitsync resume KIND/NAME | KIND --all [--timeout 5m] [--no-wait]
  gitsync events KIND/NAME [--watch]
  gitsync tree KIND/NAME
  gitsync trace deployment|service|configmap|secret|pvc/NAME
  gitsync migrate   (objects stored at a deprecated version written again at ${VERSION};
                     then each CRD's status.storedVersions trimmed, as the operator does at start)

KIND is a kind, its plural or its short name: shs, cbs, cdep, psync, dsa.
Options: --kubeconfig PATH, --context NAME, -n/--namespace NS (default: the context's),
  -A/--all-namespaces. As a kubectl plugin: kubectl gitsync ... (kubectl-gitsync on PATH).
Exit codes: 0 Ready, 1 not Ready or Stalled, 2 usage or access error, 3 timed out.
`;

const OPTIONS = {
  kubeconfig: { type: "string" },
  context: { type: "string" },
  namespace: { type: "string", short: "n" },
  "all-namespaces": { type: "boolean", short: "A" },
  output: { type: "string", short: "o", default: "table" },
  watch: { type: "boolean", short: "w" },
  timeout: { type: "string", default: "5m" },
  "no-wait": { type: "boolean" },
  all: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

/** A failure the user must act on, printed as one line, with its exit code. */
class LiveError extends Error {
  constructor(
    message: string,
    readonly code = 2,
  ) {
    super(message);
  }
}

interface Live {
  kube: KubeClient;
  namespace: string;
  allNamespaces: boolean;
  values: Values;
  out: (text: string) => void;
  err: (text: string) => void;
}

interface GitsyncObject extends KubeObject {
  spec?: { suspend?: boolean } & Record<string, unknown>;
  status?: { conditions?: Condition[]; lastHandledReconcileAt?: string } & Record<string, unknown>;
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
}

export async function runLive(command: LiveCommand, argv: string[]): Promise<number> {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (err) {
    process.stderr.write(`gitsync ${command}: ${(err as Error).message}\n\n${LIVE_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(LIVE_USAGE);
    return 0;
  }
  let kube: KubeClient | undefined;
  try {
    kube = KubeClient.fromKubeconfig(parsed.values.kubeconfig, parsed.values.context);
    kube.userAgent = "gitsync-cli";
    const live: Live = {
      kube,
      namespace: parsed.values.namespace ?? kube.access.namespace ?? "default",
      allNamespaces: Boolean(parsed.values["all-namespaces"]),
      values: parsed.values,
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
    };
    return await dispatch(command, live, parsed.positionals);
  } catch (err) {
    const failure = await explain(err, kube);
    process.stderr.write(`gitsync ${command}: ${failure.message}\n`);
    return failure.code;
  } finally {
    kube?.close();
  }
}

function dispatch(command: LiveCommand, live: Live, args: string[]): Promise<number> {
  switch (command) {
    case "get":
      return get(live, args[0]);
    case "reconcile":
      return reconcile(live, targetOf(args), {});
    case "suspend":
      return suspend(live, targetOf(args));
    case "resume":
      return reconcile(live, targetOf(args), { suspend: false });
    case "events":
      return events(live, targetOf(args));
    case "tree":
      return tree(live, targetOf(args));
    case "trace":
      return trace(live, args[0]);
    case "migrate":
      return migrate(live);
  }
}

/** gitsync migrate: one line per CRD that held objects at another version; 1 when some could not be written. */
async function migrate(live: Live): Promise<number> {
  let results: Migration[];
  try {
    results = await migrateStoredVersions(live.kube, kinds);
  } catch (err) {
    if (err instanceof CrdVersionError) throw new LiveError(err.message);
    throw err;
  }
  if (results.length === 0) live.out(`every object is stored at its CRD's storage version (${VERSION})\n`);
  for (const r of results) {
    live.out(
      `${r.crd}: ${r.rewritten} rewritten at ${r.storage} (stored versions were ${r.storedVersions.join(", ")})${r.trimmed ? `; storedVersions is now ${r.storage}` : ""}\n`,
    );
    for (const failure of r.failed) live.err(`  not rewritten: ${failure}\n`);
  }
  return results.some((r) => !r.trimmed) ? 1 : 0;
}

/** KIND/NAME, or KIND with --all. */
function targetOf(args: string[]): { kind: KindDefinition; name?: string } {
  const [word] = args;
  if (!word) throw new LiveError("name an object: KIND/NAME (or KIND --all)");
  const [kindWord = "", name] = word.includes("/") ? word.split("/", 2) : [word, args[1]];
  return { kind: resolveKind(kindWord, kinds), name };
}

const ref = (kind: KindDefinition): ResourceRef => resourceOf(kind);

async function getObject(live: Live, kind: KindDefinition, name: string): Promise<GitsyncObject> {
  try {
    return await live.kube.request<GitsyncObject>("GET", resourcePath(ref(kind), live.namespace, name));
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 404 && (await groupServed(live.kube))) {
      throw new LiveError(`${kind.kind} ${name} not found in namespace ${live.namespace}`);
    }
    throw err;
  }
}

async function listObjects(live: Live, kind: KindDefinition): Promise<GitsyncObject[]> {
  const list = await live.kube.request<KubeList<GitsyncObject>>("GET", resourcePath(ref(kind), live.allNamespaces ? undefined : live.namespace));
  return list.items;
}

/** The objects a command acts on: one by name, or every one of the kind with --all. */
async function targets(live: Live, target: { kind: KindDefinition; name?: string }): Promise<GitsyncObject[]> {
  if (target.name) return [await getObject(live, target.kind, target.name)];
  if (!live.values.all) throw new LiveError(`name a ${target.kind.singular}: ${target.kind.shortNames[0] ?? target.kind.plural}/NAME, or --all`);
  return listObjects(live, target.kind);
}

const condition = (object: GitsyncObject, type: string): Condition | undefined => object.status?.conditions?.find((c) => c.type === type);

/** Ready as a word: True, False, or Unknown before the first pass. */
function readiness(object: GitsyncObject): string {
  return condition(object, "Ready")?.status ?? "Unknown";
}

// ---- get ----

async function get(live: Live, word: string | undefined): Promise<number> {
  const [kindWord, name] = word?.split("/", 2) ?? [];
  const chosen = kindWord ? [resolveKind(kindWord, kinds)] : kinds;
  const found: [KindDefinition, GitsyncObject][] = [];
  for (const kind of chosen) {
    const objects = name ? [await getObject(live, kind, name)] : await listObjects(live, kind);
    found.push(...objects.map((o): [KindDefinition, GitsyncObject] => [kind, o]));
  }
  printObjects(live, found, true);
  if (live.values.watch) await watchObjects(live, chosen, name, new Map(found.map(([, o]) => [o.metadata.uid ?? "", o.metadata.resourceVersion])));
  return found.every(([, o]) => readiness(o) === "True") ? 0 : 1;
}

function printObjects(live: Live, found: [KindDefinition, GitsyncObject][], header: boolean): void {
  const output = live.values.output ?? "table";
  if (output === "json" || output === "yaml") {
    const items = found.map(([, o]) => o);
    const doc = items.length === 1 && header ? items[0] : { apiVersion: "v1", kind: "List", items };
    live.out(output === "json" ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc));
    return;
  }
  if (output !== "table" && output !== "wide") throw new LiveError(`-o ${output}: use table, wide, json or yaml`);
  if (found.length === 0 && header) {
    live.err(`No gitsync resources found${live.allNamespaces ? "" : ` in namespace ${live.namespace}`}.\n`);
    return;
  }
  const wide = output === "wide";
  const headers = [
    ...(live.allNamespaces ? ["NAMESPACE"] : []),
    "NAME",
    "READY",
    "STATUS",
    "REVISION",
    "SUSPENDED",
    "AGE",
    ...(wide ? ["SOURCES", "LAST REQUEST"] : []),
  ];
  const now = Date.now();
  const rows = found.map(([kind, o]) => [
    ...(live.allNamespaces ? [o.metadata.namespace ?? ""] : []),
    `${kind.singular}/${o.metadata.name}`,
    readiness(o),
    condition(o, "Ready")?.message ?? "",
    kind.revision?.(o.status as never) ?? "-",
    o.spec?.suspend ? "True" : "False",
    o.metadata.creationTimestamp ? age(Date.parse(o.metadata.creationTimestamp), now) : "-",
    ...(wide ? [(kind.sources?.(o.spec as never, o.status as never) ?? []).map((s) => s.url).join(","), o.status?.lastHandledReconcileAt ?? "-"] : []),
  ]);
  const table = renderTable(headers, rows, terminalWidth(), headers.indexOf("STATUS"));
  live.out(header ? table : table.split("\n").slice(1).join("\n"));
}

/** Prints a row for every change from now on; `shown` holds the versions printed already (a watch starts by listing them again). */
async function watchObjects(live: Live, chosen: KindDefinition[], name: string | undefined, shown: Map<string, string | undefined>): Promise<void> {
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  await Promise.all(
    chosen.map((kind) =>
      live.kube
        .watch<GitsyncObject>(
          resourcePath(ref(kind), live.allNamespaces ? undefined : live.namespace),
          name ? { fieldSelector: `metadata.name=${name}` } : {},
          (event) => {
            const { uid = "", resourceVersion } = event.object.metadata;
            if ((event.type !== "ADDED" && event.type !== "MODIFIED") || shown.get(uid) === resourceVersion) return;
            shown.set(uid, resourceVersion);
            printObjects(live, [[kind, event.object]], false);
          },
          stop.signal,
        )
        .catch((err: unknown) => {
          if (!stop.signal.aborted) throw err;
        }),
    ),
  );
}

// ---- reconcile, suspend, resume ----

async function reconcile(live: Live, target: { kind: KindDefinition; name?: string }, spec: { suspend?: boolean }): Promise<number> {
  const objects = await targets(live, target);
  const requested = new Date().toISOString();
  for (const object of objects) {
    await patch(live, target.kind, object, {
      metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: requested } },
      ...(spec.suspend === false ? { spec: { suspend: false } } : {}),
    });
    live.err(`► ${spec.suspend === false ? "resumed" : "reconcile requested for"} ${target.kind.singular}/${object.metadata.name}\n`);
  }
  if (live.values["no-wait"]) return 0;
  const timeoutMs = parseTimeout(live.values.timeout);
  const codes = await Promise.all(objects.map((o) => waitHandled(live, target.kind, o.metadata.name, requested, timeoutMs)));
  return Math.max(0, ...codes);
}

async function suspend(live: Live, target: { kind: KindDefinition; name?: string }): Promise<number> {
  for (const object of await targets(live, target)) {
    await patch(live, target.kind, object, { spec: { suspend: true } });
    live.out(`✔ ${target.kind.singular}/${object.metadata.name} suspended\n`);
  }
  return 0;
}

function patch(live: Live, kind: KindDefinition, object: GitsyncObject, body: object): Promise<unknown> {
  return live.kube.request("PATCH", resourcePath(ref(kind), object.metadata.namespace, object.metadata.name), {
    body,
    contentType: "application/merge-patch+json",
  });
}

function parseTimeout(text: string | undefined): number {
  try {
    return parseDuration(text ?? "5m");
  } catch (err) {
    throw new LiveError(`--timeout: ${(err as Error).message}`);
  }
}

/**
 * Waits until the pass that answers `requested` has ended (lastHandledReconcileAt shows it, and
 * Ready is settled: not Reconciling, for this generation). On a terminal, Ready's message is
 * shown live as it changes, pass progress included.
 */
async function waitHandled(live: Live, kind: KindDefinition, name: string, requested: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const label = `${kind.singular}/${name}`;
  const tty = Boolean(process.stderr.isTTY);
  let shown = "";
  for (;;) {
    const object = await getObject(live, kind, name);
    const message = condition(object, "Ready")?.message;
    if (tty && message && message !== shown) {
      shown = message;
      live.err(`\r\x1b[2K◎ ${label}: ${cutTo(shown, terminalWidth() - label.length - 6)}`);
    }
    const timedOut = Date.now() >= deadline;
    const result = settled(object, requested) ? outcome(object, label) : timedOut ? timeoutOutcome(live, label, requested) : undefined;
    if (result) {
      if (tty) live.err("\r\x1b[2K");
      live.out(result.line);
      return result.code;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Whether the pass that answers `requested` has ended: handled, not Reconciling, Ready for this generation. */
function settled(object: GitsyncObject, requested: string): boolean {
  return (
    object.status?.lastHandledReconcileAt === requested &&
    !condition(object, "Reconciling") &&
    (condition(object, "Ready")?.observedGeneration ?? 0) >= (object.metadata.generation ?? 0)
  );
}

function outcome(object: GitsyncObject, label: string): { line: string; code: number } {
  const ready = condition(object, "Ready");
  if (ready?.status === "True") return { line: `✔ ${label}: ${ready.message ?? "Ready"}\n`, code: 0 };
  const stalled = condition(object, "Stalled")?.status === "True" ? " (stalled)" : "";
  return { line: `✗ ${label}${stalled}: ${ready?.reason ?? "NotReady"}: ${ready?.message ?? ""}\n`, code: 1 };
}

function timeoutOutcome(live: Live, label: string, requested: string): { line: string; code: number } {
  return { line: `✗ ${label}: timed out after ${live.values.timeout} waiting for the pass requested at ${requested}\n`, code: 3 };
}

// ---- events ----

interface EventObject {
  type?: string;
  reason?: string;
  note?: string;
  eventTime?: string;
  deprecatedLastTimestamp?: string;
  series?: { lastObservedTime?: string };
  metadata: { creationTimestamp?: string; namespace?: string; name: string };
  regarding?: { kind?: string; name?: string; uid?: string };
}

async function events(live: Live, target: { kind: KindDefinition; name?: string }): Promise<number> {
  const [object] = await targets(live, { ...target, name: target.name ?? "" });
  if (!object) return 2;
  const related = new Set([object.metadata.uid, ...(await children(live, target.kind, object)).map((c) => c.object.metadata.uid)].filter(Boolean));
  const isRelated = (e: EventObject): boolean => related.has(e.regarding?.uid ?? "");
  const path = `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(live.namespace)}/events`;
  const list = await live.kube.request<KubeList<EventObject> & { metadata: { resourceVersion?: string } }>("GET", path);
  const mine = list.items.filter(isRelated).sort((a, b) => when(a) - when(b));
  const headers = ["AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"];
  const row = (e: EventObject): string[] => [
    age(when(e), Date.now()),
    e.type ?? "",
    e.reason ?? "",
    `${(e.regarding?.kind ?? "").toLowerCase()}/${e.regarding?.name ?? ""}`,
    e.note ?? "",
  ];
  if (mine.length === 0) live.err(`No events for ${target.kind.singular}/${object.metadata.name} or its children.\n`);
  else live.out(renderTable(headers, mine.map(row), terminalWidth(), 4));
  if (!live.values.watch) return 0;
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  await live.kube
    .watch<EventObject>(
      path,
      { resourceVersion: list.metadata.resourceVersion },
      (event) => {
        if (event.type === "ADDED" && isRelated(event.object)) live.out(`${row(event.object).join("   ")}\n`);
      },
      stop.signal,
    )
    .catch((err: unknown) => {
      if (!stop.signal.aborted) throw err;
    });
  return 0;
}

function when(e: EventObject): number {
  return Date.parse(e.series?.lastObservedTime ?? e.eventTime ?? e.deprecatedLastTimestamp ?? e.metadata.creationTimestamp ?? "") || 0;
}

// ---- tree and trace ----

/** The kinds of object the operator applies for an owner (a ComposeDeployment's), by the word kubectl accepts. */
const CHILD_KINDS: Record<string, { kind: string; ref: ResourceRef; words: string[] }> = {
  Deployment: {
    kind: "Deployment",
    ref: { group: "apps", version: "v1", plural: "deployments", namespaced: true },
    words: ["deployment", "deployments", "deploy"],
  },
  Service: { kind: "Service", ref: { group: "", version: "v1", plural: "services", namespaced: true }, words: ["service", "services", "svc"] },
  ConfigMap: { kind: "ConfigMap", ref: { group: "", version: "v1", plural: "configmaps", namespaced: true }, words: ["configmap", "configmaps", "cm"] },
  PersistentVolumeClaim: {
    kind: "PersistentVolumeClaim",
    ref: { group: "", version: "v1", plural: "persistentvolumeclaims", namespaced: true },
    words: ["persistentvolumeclaim", "persistentvolumeclaims", "pvc"],
  },
  Secret: { kind: "Secret", ref: { group: "", version: "v1", plural: "secrets", namespaced: true }, words: ["secret", "secrets"] },
};

interface Child {
  kind: string;
  object: KubeObject & { status?: { readyReplicas?: number; replicas?: number; phase?: string }; spec?: { replicas?: number } };
}

/** Every object the operator applied for this one, found by the operator's label and their owner. */
async function children(live: Live, kind: KindDefinition, owner: GitsyncObject): Promise<Child[]> {
  const key = `${owner.metadata.namespace}/${owner.metadata.name}`;
  const found: Child[] = [];
  for (const child of Object.values(CHILD_KINDS)) {
    let list: KubeList<Child["object"]>;
    try {
      list = await live.kube.request("GET", resourcePath(child.ref, owner.metadata.namespace), { query: { labelSelector: MANAGED_SELECTOR } });
    } catch (err) {
      // A user who may not list Secrets still sees the rest of the tree.
      if (err instanceof KubeApiError && err.code === 403) continue;
      throw err;
    }
    for (const object of list.items) if (ownerKey(object, { kind: kind.kind, group: GROUP }) === key) found.push({ kind: child.kind, object });
  }
  return found;
}

function childState(child: Child): string {
  if (child.kind === "Deployment") {
    const want = child.object.spec?.replicas ?? 1;
    const ready = child.object.status?.readyReplicas ?? 0;
    return `${ready === want ? "Ready" : "NotReady"} ${ready}/${want}`;
  }
  if (child.kind === "PersistentVolumeClaim") return child.object.status?.phase ?? "Pending";
  return "";
}

async function tree(live: Live, target: { kind: KindDefinition; name?: string }): Promise<number> {
  const [object] = await targets(live, { ...target, name: target.name ?? "" });
  if (!object) return 2;
  const ready = condition(object, "Ready");
  live.out(
    `${target.kind.kind} ${object.metadata.namespace}/${object.metadata.name}  Ready=${readiness(object)}${ready?.message ? `  ${ready.message}` : ""}\n`,
  );
  const lines = [
    ...(target.kind.sources?.(object.spec as never, object.status as never) ?? []).map(
      (s) => `source ${s.url}${s.ref ? `  ${s.ref}` : ""}${s.revision ? `  @ ${s.revision.slice(0, 12)}` : ""}`,
    ),
    ...(await children(live, target.kind, object)).map((c) => `${c.kind}/${c.object.metadata.name}${childState(c) ? `  ${childState(c)}` : ""}`),
  ];
  lines.forEach((line, i) => live.out(`${i === lines.length - 1 ? "└──" : "├──"} ${line}\n`));
  return readiness(object) === "True" ? 0 : 1;
}

async function trace(live: Live, word: string | undefined): Promise<number> {
  const [kindWord = "", name] = word?.split("/", 2) ?? [];
  const child = Object.values(CHILD_KINDS).find((c) => c.words.includes(kindWord.toLowerCase()));
  if (!child || !name)
    throw new LiveError(
      `name an object the operator applies: ${Object.values(CHILD_KINDS)
        .map((c) => c.words.at(-1))
        .join("|")}/NAME`,
    );
  let object: KubeObject;
  try {
    object = await live.kube.request<KubeObject>("GET", resourcePath(child.ref, live.namespace, name));
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 404) throw new LiveError(`${child.kind} ${name} not found in namespace ${live.namespace}`);
    throw err;
  }
  for (const kind of kinds) {
    const key = ownerKey(object, { kind: kind.kind, group: GROUP });
    if (!key) continue;
    const [namespace = live.namespace, ownerName = ""] = key.split("/");
    const owner = await getObject({ ...live, namespace }, kind, ownerName);
    live.out(`${child.kind} ${live.namespace}/${name}\n└── managed by ${kind.kind} ${key}  Ready=${readiness(owner)}\n`);
    for (const source of kind.sources?.(owner.spec, owner.status) ?? []) {
      live.out(`    └── from ${source.url}${source.ref ? `  ${source.ref}` : ""}${source.revision ? `  @ ${source.revision}` : ""}\n`);
    }
    return 0;
  }
  throw new LiveError(`${child.kind} ${live.namespace}/${name} is not managed by gitsync-operator`, 1);
}

// ---- output and errors ----

function terminalWidth(): number {
  return process.stdout.isTTY ? (process.stdout.columns ?? 120) : Number.POSITIVE_INFINITY;
}

function cutTo(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/** Whether the API server serves gitsync.dev at all (the CRDs are installed). */
async function groupServed(kube: KubeClient): Promise<boolean> {
  try {
    await kube.request("GET", `/apis/${GROUP}`);
    return true;
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 404) return false;
    throw err;
  }
}

/** Any failure as one line and an exit code: never a stack trace. */
async function explain(err: unknown, kube: KubeClient | undefined): Promise<LiveError> {
  if (err instanceof LiveError) return err;
  if (err instanceof KubeApiError) {
    if (err.code === 404 && kube && !(await groupServed(kube).catch(() => true))) {
      return new LiveError(`the ${GROUP} CRDs are not installed in the cluster at ${kube.access.server} (install the chart, or kubectl apply -f deploy/crds)`);
    }
    if (err.code === 401) return new LiveError(`the API server at ${kube?.access.server ?? "?"} refused the credentials (401): check the kubeconfig's user`);
    return new LiveError(err.message.split("\n")[0] ?? err.message);
  }
  const code = (err as { code?: string }).code;
  if (code && /^E[A-Z]+$/.test(code)) return new LiveError(`cannot reach the API server${kube ? ` at ${kube.access.server}` : ""}: ${code}`);
  return new LiveError((err as Error).message?.split("\n")[0] ?? String(err));
}
