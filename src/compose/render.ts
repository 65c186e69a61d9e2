// A compose project as Kubernetes objects: per service a Deployment, a Service for ports and
// expose (named after the compose service, so others reach it by that name), ConfigMaps for
// bind mounts, a Secret for encrypted env files; a PersistentVolumeClaim per named volume.
// Each service's hash covers its rendered objects and the git ids of every project path it
// reads, so it changes exactly when the service must roll. Pure over ProjectFiles.

import { createHash } from "node:crypto";
import {
  commandArgs,
  environmentOf,
  envFilesOf,
  FieldError,
  parsePort,
  quantityBytes,
  quantityCpus,
  readinessProbe,
  seconds,
  type PortSpec,
} from "./convert.js";
import { ComposeInvalidError, insideProject, parseEnvFile, readProjectFile, type ComposeService, type Project } from "./project.js";
import { mountsOf, podVolumes, type ConfigMapPlan } from "./volumes.js";
import { byCodeUnits } from "../util/order.js";

export const CONFIG_HASH_ANNOTATION = "gitsync.dev/config-hash";
export const PART_OF_LABEL = "app.kubernetes.io/part-of";
export const NAME_LABEL = "app.kubernetes.io/name";
const MANAGED_BY: Record<string, string> = { "app.kubernetes.io/managed-by": "gitsync-operator" };

export type RolloutPolicy = "Changed" | "AllOnProjectChange";

/** How long a new pod must stay ready before it counts (Deployment minReadySeconds). */
export const MIN_READY_SECONDS = 3;

/** Keys that would escape the pod's isolation: refused rather than dropped. */
const UNSAFE: Record<string, (value: unknown) => boolean> = {
  privileged: (v) => v === true,
  network_mode: (v) => !["bridge", "default"].includes(String(v)),
  pid: (v) => Boolean(v),
  ipc: (v) => v === "host" || String(v).startsWith("service:") || String(v).startsWith("container:"),
  userns_mode: (v) => Boolean(v),
  devices: (v) => Array.isArray(v) && v.length > 0,
  volumes_from: (v) => Array.isArray(v) && v.length > 0,
  cap_add: (v) => Array.isArray(v) && v.length > 0,
};

/** Keys this renderer carries over; any other key is reported as ignored. */
const HONOURED = new Set([
  "image", "build", "command", "entrypoint", "environment", "env_file", "deploy", "scale", "healthcheck", "user", "working_dir",
  "labels", "ports", "expose", "volumes", "depends_on", "pull_policy", "stop_grace_period", "profiles",
]); // prettier-ignore

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: unknown[] };
  [field: string]: unknown;
}

export interface RenderOptions {
  /** The ComposeDeployment's name: the project name, in every object's part-of label. */
  name: string;
  namespace: string;
  /** Deploy only these services (default all). */
  services?: readonly string[];
  rollout?: RolloutPolicy;
}

export interface RenderedService {
  name: string;
  image: string;
  replicas: number;
  hash: string;
  /** Project path → git id of everything the service reads: env files, mounts, its own folder. */
  inputs: Record<string, string>;
  /** The compose definition after interpolation, to explain a roll. */
  compose: ComposeService;
  dependsOn: { name: string; healthy: boolean }[];
  deployment: Manifest;
  service?: Manifest;
  /** ConfigMaps for bind mounts; their data is read only when they must be applied (configMapData). */
  configMaps: ConfigMapPlan[];
  secret?: Manifest;
}

export interface RenderedProject {
  /** In application order: every service after the services it depends on. */
  services: RenderedService[];
  claims: Manifest[];
  /** Keys ignored, per service, for the status. */
  notes: string[];
  inputs: { composeFile: string; envFile?: string };
}

const DNS_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

function labelsFor(options: RenderOptions, service?: string): Record<string, string> {
  return { ...MANAGED_BY, [PART_OF_LABEL]: options.name, ...(service ? { [NAME_LABEL]: service } : {}) };
}

function meta(options: RenderOptions, name: string, service?: string): Manifest["metadata"] {
  return { name, namespace: options.namespace, labels: labelsFor(options, service) };
}

export function hashOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

function checkService(name: string, service: ComposeService): { ignored: string[] } {
  if (!DNS_LABEL.test(name))
    throw new FieldError(
      `services.${name}`,
      "the service name must be a DNS label (lower case letters, digits and -, at most 63) to name its Kubernetes objects",
    );
  for (const [key, unsafe] of Object.entries(UNSAFE)) {
    if (service[key] !== undefined && unsafe(service[key])) throw new FieldError(`services.${name}.${key}`, "cannot be honoured safely in a pod");
  }
  if (!service.image) {
    throw new FieldError(
      `services.${name}.${service.build ? "build" : "image"}`,
      service.build ? "build without image: the cluster cannot build images; set image" : "image is required",
    );
  }
  return { ignored: Object.keys(service).filter((key) => !HONOURED.has(key) && !key.startsWith("x-")) };
}

function dependenciesOf(name: string, service: ComposeService, known: Set<string>): { name: string; healthy: boolean }[] {
  const value = service.depends_on;
  const entries: [string, { condition?: string }][] = Array.isArray(value)
    ? value.map((dep) => [String(dep), {}])
    : Object.entries((value ?? {}) as Record<string, { condition?: string }>);
  return entries.map(([dep, options]) => {
    if (!known.has(dep)) throw new FieldError(`services.${name}.depends_on`, `"${dep}" is not a service of this project`);
    return { name: dep, healthy: options.condition === "service_healthy" };
  });
}

/** Services ordered so that each comes after its dependencies; a cycle is invalid. */
function applicationOrder(services: RenderedService[]): RenderedService[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const ordered: RenderedService[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (service: RenderedService, chain: string[]): void => {
    if (state.get(service.name) === "done") return;
    if (state.get(service.name) === "visiting")
      throw new FieldError(`services.${service.name}.depends_on`, `dependency cycle: ${[...chain, service.name].join(" → ")}`);
    state.set(service.name, "visiting");
    for (const dep of service.dependsOn) {
      const target = byName.get(dep.name);
      if (target) visit(target, [...chain, service.name]);
    }
    state.set(service.name, "done");
    ordered.push(service);
  };
  for (const service of [...services].sort((a, b) => byCodeUnits(a.name, b.name))) visit(service, []);
  return ordered;
}

/** Renders every selected service; throws ComposeInvalidError naming file, service and key. */
export async function renderProject(project: Project, options: RenderOptions): Promise<RenderedProject> {
  const file = project.composeFile.path;
  try {
    const known = new Set(Object.keys(project.services));
    for (const wanted of options.services ?? []) {
      if (!known.has(wanted)) throw new FieldError("services", `spec.services names "${wanted}", which the project does not define`);
    }
    const selected = Object.entries(project.services).filter(([name]) => !options.services?.length || options.services.includes(name));
    const notes: string[] = [];
    const services: RenderedService[] = [];
    for (const [name, compose] of selected) {
      const { ignored } = checkService(name, compose);
      if (ignored.length) notes.push(`${name}: ignored ${ignored.join(", ")}`);
      services.push(await renderService(project, options, name, compose, known));
    }
    return {
      services: applicationOrder(services),
      claims: claimsOf(project, options),
      notes,
      inputs: { composeFile: project.composeFile.entry.oid, ...(project.envFile ? { envFile: project.envFile.entry.oid } : {}) },
    };
  } catch (err) {
    if (err instanceof FieldError) throw new ComposeInvalidError(file, err.field, err.message);
    throw err;
  }
}

function claimName(options: RenderOptions, volume: string): string {
  return `${options.name}-${volume.toLowerCase().replace(/[^a-z0-9-]+/g, "-")}`.slice(0, 253);
}

function claimsOf(project: Project, options: RenderOptions): Manifest[] {
  return Object.entries(project.volumes).map(([volume, spec]) => {
    const size = (spec?.driver_opts as Record<string, string> | undefined)?.size ?? "1Gi";
    return {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: meta(options, claimName(options, volume)),
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: size } } },
    };
  });
}

interface EnvResult {
  env: { name: string; value: string }[];
  secretData?: Record<string, string>;
  inputs: Record<string, string>;
}

/** env_file then environment, as compose merges them; encrypted env files go to a Secret (envFrom), never into the pod spec. */
async function envOf(project: Project, name: string, compose: ComposeService): Promise<EnvResult> {
  const plain = new Map<string, string>();
  const sealed = new Map<string, string>();
  const inputs: Record<string, string> = {};
  for (const [i, ref] of envFilesOf(compose.env_file).entries()) {
    const relPath = insideProject(ref.path);
    if (relPath === undefined) throw new FieldError(`services.${name}.env_file[${i}]`, `"${ref.path}" is outside the project`);
    const envFile = await readProjectFile(project.files, relPath, project.decrypt);
    if (!envFile) {
      if (ref.required) throw new FieldError(`services.${name}.env_file[${i}]`, `"${ref.path}" does not exist`);
      continue;
    }
    inputs[relPath] = envFile.entry.oid;
    for (const [key, value] of Object.entries(parseEnvFile(envFile))) {
      (envFile.encrypted ? sealed : plain).set(key, value);
      (envFile.encrypted ? plain : sealed).delete(key);
    }
  }
  for (const [key, value] of environmentOf(compose.environment, project.variables)) {
    plain.set(key, value);
    sealed.delete(key);
  }
  const env = [...plain].map(([key, value]) => ({ name: key, value }));
  return { env, inputs, ...(sealed.size ? { secretData: Object.fromEntries(sealed) } : {}) };
}

function resourcesOf(compose: ComposeService, field: string): Record<string, unknown> | undefined {
  const resources = (compose.deploy as { resources?: Record<string, { cpus?: unknown; memory?: unknown } | undefined> } | undefined)?.resources;
  if (!resources) return undefined;
  const convert = (part: { cpus?: unknown; memory?: unknown } | undefined, key: string): Record<string, string> | undefined => {
    if (!part) return undefined;
    const out: Record<string, string> = {};
    if (part.cpus !== undefined) out.cpu = quantityCpus(part.cpus, `${field}.${key}.cpus`);
    if (part.memory !== undefined) out.memory = quantityBytes(part.memory, `${field}.${key}.memory`);
    return Object.keys(out).length ? out : undefined;
  };
  const limits = convert(resources.limits, "limits");
  const requests = convert(resources.reservations, "reservations");
  return limits || requests ? { ...(limits ? { limits } : {}), ...(requests ? { requests } : {}) } : undefined;
}

function securityOf(compose: ComposeService, field: string): Record<string, number> | undefined {
  if (compose.user === undefined) return undefined;
  const user = String(compose.user);
  const match = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!match) throw new FieldError(`${field}.user`, `"${user}" must be a numeric uid or uid:gid (Kubernetes cannot resolve user names)`);
  return { runAsUser: Number(match[1]), ...(match[2] ? { runAsGroup: Number(match[2]) } : {}) };
}

const PULL_POLICY: Record<string, string> = {
  always: "Always",
  never: "Never",
  missing: "IfNotPresent",
  if_not_present: "IfNotPresent",
  build: "IfNotPresent",
};

function labelsOf(compose: ComposeService): { labels: Record<string, string>; annotations: Record<string, string> } {
  const all = environmentOf(compose.labels, {});
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  for (const [key, value] of all) {
    const validKey = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(key);
    const validValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/.test(value);
    if (validKey && validValue) labels[key] = value;
    else annotations[key] = value;
  }
  return { labels, annotations };
}

interface ContainerParts {
  env: EnvResult;
  ports: PortSpec[];
  volumeMounts: unknown[];
  secretName: string;
}

function containerOf(name: string, compose: ComposeService, parts: ContainerParts): Record<string, unknown> {
  const field = `services.${name}`;
  const { env, ports, volumeMounts, secretName } = parts;
  return {
    name,
    image: compose.image,
    ...optional("imagePullPolicy", compose.pull_policy && (PULL_POLICY[compose.pull_policy] ?? "IfNotPresent")),
    ...optional("command", commandArgs(compose.entrypoint, `${field}.entrypoint`)),
    ...optional("args", commandArgs(compose.command, `${field}.command`)),
    ...optional("workingDir", compose.working_dir),
    ...(env.env.length ? { env: env.env } : {}),
    ...(env.secretData ? { envFrom: [{ secretRef: { name: secretName } }] } : {}),
    ...(ports.length ? { ports: uniquePorts(ports).map((p) => ({ containerPort: p.target, protocol: p.protocol })) } : {}),
    ...optional("resources", resourcesOf(compose, `${field}.deploy.resources`)),
    ...optional("readinessProbe", readinessProbe(compose, `${field}.healthcheck`)),
    ...optional("securityContext", securityOf(compose, field)),
    ...(volumeMounts.length ? { volumeMounts } : {}),
  };
}

/** deploy.replicas (or the older scale), default 1: a whole number from 0. */
function replicasOf(compose: ComposeService, field: string): number {
  const deploy = (compose.deploy ?? {}) as { replicas?: unknown };
  const replicas = Number(deploy.replicas ?? compose.scale ?? 1);
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 10_000) {
    const where = deploy.replicas !== undefined ? "deploy.replicas" : "scale";
    throw new FieldError(`${field}.${where}`, `${JSON.stringify(deploy.replicas ?? compose.scale)} is not a number of replicas (a whole number from 0)`);
  }
  return replicas;
}

async function renderService(project: Project, options: RenderOptions, name: string, compose: ComposeService, known: Set<string>): Promise<RenderedService> {
  const field = `services.${name}`;
  const mounts = await mountsOf(project.files, name, compose.volumes, project.volumes, `${field}.volumes`);
  const { volumes, volumeMounts } = podVolumes(mounts, (volume) => claimName(options, volume));
  const env = await envOf(project, name, compose);
  const replicas = replicasOf(compose, field);
  const ports = ((compose.ports as unknown[] | undefined) ?? []).map((port, i) => parsePort(port, `${field}.ports[${i}]`));
  const exposed = ((compose.expose as unknown[] | undefined) ?? []).map((port, i) => parsePort(String(port), `${field}.expose[${i}]`));
  const secretName = `${name}-env`;
  const { labels: composeLabels, annotations } = labelsOf(compose);
  const podLabels = { ...composeLabels, ...labelsFor(options, name) };
  const container = containerOf(name, compose, { env, ports: [...ports, ...exposed], volumeMounts, secretName });
  const grace = seconds(compose.stop_grace_period, `${field}.stop_grace_period`);
  const deployment: Manifest = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { ...meta(options, name, name), labels: { ...composeLabels, ...labelsFor(options, name) } },
    spec: {
      replicas,
      // A pod counts as available only after staying ready this long: a container that exits at
      // start is briefly "ready" without a readiness probe, and must not complete a rollout.
      minReadySeconds: MIN_READY_SECONDS,
      selector: { matchLabels: { [PART_OF_LABEL]: options.name, [NAME_LABEL]: name } },
      template: {
        metadata: { labels: podLabels, annotations: { ...annotations } },
        spec: { containers: [container], ...(volumes.length ? { volumes } : {}), ...(grace !== undefined ? { terminationGracePeriodSeconds: grace } : {}) },
      },
    },
  };
  const service = serviceOf(options, name, [...ports, ...exposed]);
  const secret = env.secretData ? secretOf(options, name, secretName, env.secretData) : undefined;
  const configMaps = mounts.flatMap((m) => (m.kind === "config" ? [m.configMap] : []));
  const inputs: Record<string, string> = { ...env.inputs };
  for (const plan of configMaps) for (const item of plan.items) inputs[item.file.path] = item.file.oid;
  const own = await project.files.stat(name);
  if (own?.type === "tree") for (const file of await project.files.listFiles(name)) inputs[file.path] = file.oid;
  const projectInputs = options.rollout === "AllOnProjectChange" ? [project.composeFile.entry.oid, project.envFile?.entry.oid ?? ""] : [];
  const hash = hashOf([
    deployment,
    service ?? null,
    configMaps.map((c) => [c.name, c.items.map((i) => [i.key, i.path])]),
    Object.entries(inputs).sort(),
    projectInputs,
  ]);
  deployment.spec = withHash(deployment.spec, hash);
  return {
    name,
    image: String(compose.image),
    replicas,
    hash,
    inputs,
    compose,
    dependsOn: dependenciesOf(name, compose, known),
    deployment,
    configMaps,
    ...(service ? { service } : {}),
    ...(secret ? { secret } : {}),
  };
}

function optional<K extends string>(key: K, value: unknown): Partial<Record<K, unknown>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, unknown>);
}

function withHash(spec: unknown, hash: string): unknown {
  const copy = spec as { template: { metadata: { annotations: Record<string, string> } } };
  copy.template.metadata.annotations[CONFIG_HASH_ANNOTATION] = hash;
  return copy;
}

function uniquePorts<T extends { target: number; protocol: string; published?: number }>(ports: T[]): T[] {
  const seen = new Set<string>();
  return ports.filter((p) => {
    const key = `${p.published ?? p.target}/${p.protocol}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function serviceOf(options: RenderOptions, name: string, ports: ReturnType<typeof parsePort>[]): Manifest | undefined {
  if (!ports.length) return undefined;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(options, name, name),
    spec: {
      selector: { [PART_OF_LABEL]: options.name, [NAME_LABEL]: name },
      ports: uniquePorts(ports).map((p) => ({
        name: `${p.protocol.toLowerCase()}-${p.published ?? p.target}`,
        port: p.published ?? p.target,
        targetPort: p.target,
        protocol: p.protocol,
      })),
    },
  };
}

function secretOf(options: RenderOptions, service: string, name: string, data: Record<string, string>): Manifest {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: meta(options, name, service),
    type: "Opaque",
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  };
}
