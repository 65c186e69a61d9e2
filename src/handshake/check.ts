// The handshake: for every edge "A depends on B", resolve B, compare versions and check
// that every call A makes towards B exists in B's contract. Pure: manifests in, a result
// out. The controller and `gitsync handshake check` both call checkHandshake().

import semver from "semver";
import { trimSlashes } from "../util/paths.js";
import { normalizeRepoUrl } from "../util/url.js";
import type { Dependency, Endpoint, ServiceManifest } from "./manifests.js";

export { normalizeRepoUrl };

export type Mode = "strict" | "relaxed";
export type FailureReason = "DependencyNotFound" | "VersionMismatch" | "EndpointMissing" | "InterfaceMissing";

export interface Failure {
  dependency: string;
  reason: FailureReason;
  message: string;
}

/** One dependency edge; services are identified by their index in the input, never by name. */
export interface EdgeResult {
  /** The depending service's label, and its index. */
  from: string;
  fromService: number;
  /** The dependency's label (its desiredState key when it did not resolve), and its index. */
  to: string;
  toService?: number;
  /** The desiredState key. */
  dependency: string;
  mode: Mode;
  failures: Failure[];
}

export interface ServiceResult {
  name: string;
  /** The name, or "name (repo)" where two services share a name. */
  label: string;
  /** Where the service was read from: a folder, or a repository URL (and path). */
  source: string;
  version?: string;
  handshake: boolean;
  failures: Failure[];
}

export interface HandshakeResult {
  handshake: boolean;
  mode: Mode;
  services: ServiceResult[];
  edges: EdgeResult[];
  /** Problems that do not fail the check, e.g. two services with one name. */
  warnings: string[];
}

/** Names compared without case or punctuation: stockService = stock-service. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** Paths compared with parameter names ignored: /stock/{productId} = /stock/{id} = /stock/:id. */
export function normalizePath(path: string): string {
  return `/${trimSlashes(path.trim())}`.replace(/\{[^}/]*\}|:[^/]+/g, "{}");
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.method.toUpperCase() === b.method.toUpperCase() && normalizePath(a.path) === normalizePath(b.path);
}

/** The stricter of the resource's mode and the edge's own sync setting. */
export function edgeMode(mode: Mode, sync: Mode): Mode {
  return mode === "strict" || sync === "strict" ? "strict" : "relaxed";
}

/** Whether actual meets expected: strict is equality; relaxed is semver-compatible or in range. */
export function versionAgrees(expected: string, actual: string, mode: Mode): boolean {
  if (mode === "strict") {
    const [e, a] = [semver.valid(expected), semver.valid(actual)];
    return e && a ? semver.eq(e, a) : expected === actual;
  }
  const actualVersion = semver.coerce(actual);
  if (!actualVersion) return expected === actual;
  if (semver.valid(semver.coerce(expected)) && /^\d+(\.\d+){0,2}([-+].*)?$/.test(expected)) {
    const expectedVersion = semver.coerce(expected) as semver.SemVer;
    return actualVersion.major === expectedVersion.major && semver.gte(actualVersion, expectedVersion);
  }
  return semver.validRange(expected) ? semver.satisfies(actualVersion, expected) : expected === actual;
}

/** Finds the service a dependency points at: by repo URL first, then by name. */
export function resolveDependency(dependency: Dependency, services: ServiceManifest[]): ServiceManifest | undefined {
  if (dependency.repo) {
    const wanted = normalizeRepoUrl(dependency.repo);
    const byRepo = services.find((s) => s.repos.some((r) => normalizeRepoUrl(r) === wanted));
    if (byRepo) return byRepo;
  }
  return findByName(dependency.key, services);
}

function findByName<T extends { name: string }>(name: string, candidates: T[]): T | undefined {
  const key = normalizeName(name);
  const exact = candidates.find((c) => normalizeName(c.name) === key);
  if (exact) return exact;
  // Teams key dependencies as stockService for a service named stock.
  const bare = (n: string): string => normalizeName(n).replace(/service$/, "");
  return candidates.find((c) => bare(c.name) === bare(name));
}

interface Endpoints {
  from: ServiceManifest;
  target: ServiceManifest;
  labels: { from: string; target: string };
  dependency: Dependency;
  mode: Mode;
}

function checkEdge(services: ServiceManifest[], labels: string[], fromIndex: number, dependency: Dependency, mode: Mode): EdgeResult {
  const from = services[fromIndex] as ServiceManifest;
  const target = resolveDependency(dependency, services);
  const toIndex = target ? services.indexOf(target) : undefined;
  const fromLabel = labels[fromIndex] as string;
  const toLabel = toIndex === undefined ? dependency.key : (labels[toIndex] as string);
  const edge: EdgeResult = {
    from: fromLabel,
    fromService: fromIndex,
    to: toLabel,
    toService: toIndex,
    dependency: dependency.key,
    mode: edgeMode(mode, dependency.sync),
    failures: [],
  };
  const failed = (reason: FailureReason, message: string): Failure => ({ dependency: toLabel, reason, message });
  if (!target) {
    const where = dependency.repo ? `repo ${dependency.repo} or name ${dependency.key}` : `name ${dependency.key}`;
    edge.failures.push(failed("DependencyNotFound", `${fromLabel} depends on ${dependency.key}, but no service in this handshake matches ${where}`));
    return edge;
  }
  const pair = { from, target, labels: { from: fromLabel, target: toLabel }, dependency, mode: edge.mode };
  edge.failures.push(...versionFailures(pair).map(([r, m]) => failed(r, m)), ...endpointFailures(pair).map(([r, m]) => failed(r, m)));
  return edge;
}

function versionFailures({ from, target, labels, dependency, mode }: Endpoints): [FailureReason, string][] {
  const expected = dependency.version ?? from.contract?.version;
  const actual = target.contract?.version ?? target.version;
  if (!expected) return [];
  if (!actual) return [["VersionMismatch", `${labels.from} expects ${labels.target} ${expected} (${mode}), but ${labels.target} declares no version`]];
  if (versionAgrees(expected, actual, mode)) return [];
  const what = target.contract?.version ? `${labels.target}'s contract is` : `${labels.target} is at`;
  const wanted = mode === "strict" ? expected : semver.validRange(expected) && !semver.valid(expected) ? `in ${expected}` : `compatible with ${expected}`;
  return [["VersionMismatch", `${labels.from} expects ${labels.target} ${wanted} (${mode}), but ${what} ${actual}`]];
}

function endpointFailures({ from, target, labels, dependency, mode }: Endpoints): [FailureReason, string][] {
  if (!from.interface) return [];
  const listed = findByName(target.name, from.interface.dependencies) ?? findByName(dependency.key, from.interface.dependencies);
  const failures: [FailureReason, string][] = [];
  if (!listed && mode === "strict") {
    failures.push([
      "InterfaceMissing",
      `${labels.from} depends on ${labels.target} in service.yaml, but its interface.yaml does not list ${target.name} (strict)`,
    ]);
  }
  for (const call of listed?.outbound ?? []) {
    const endpoint = `${call.method.toUpperCase()} ${call.path}`;
    if (!target.contract) failures.push(["EndpointMissing", `${labels.from} calls ${endpoint} on ${labels.target}, but ${labels.target} has no contract`]);
    else if (!target.contract.endpoints.some((e) => sameEndpoint(e, call))) {
      failures.push(["EndpointMissing", `${labels.from} calls ${endpoint} on ${labels.target}, but ${labels.target}'s contract has no such endpoint`]);
    }
  }
  return failures;
}

/** Where a service came from, short: the repository's or folder's last path segment. */
export function shortOrigin(service: ServiceManifest): string {
  const where = service.url ?? service.source;
  const segments = where
    .replace(/[#?].*$/, "")
    .replace(/\/+$/, "")
    .replace(/\.git$/, "")
    .split(/[/\\]/)
    .filter(Boolean);
  return segments.at(-1) ?? where;
}

/** Each service's label: its name, or "name (origin)" where two services share the name. */
export function serviceLabels(services: ServiceManifest[]): string[] {
  const byName = groupByName(services);
  return services.map((service) => {
    const sameName = byName.get(normalizeName(service.name)) ?? [];
    if (sameName.length < 2) return service.name;
    const origin = shortOrigin(service);
    const unique = sameName.filter((other) => shortOrigin(other) === origin).length === 1;
    return `${service.name} (${unique ? origin : service.source})`;
  });
}

function groupByName(services: ServiceManifest[]): Map<string, ServiceManifest[]> {
  const byName = new Map<string, ServiceManifest[]>();
  for (const service of services) byName.set(normalizeName(service.name), [...(byName.get(normalizeName(service.name)) ?? []), service]);
  return byName;
}

/** A warning for every name that more than one service uses: dependencies by name then resolve to the first. */
export function duplicateNameWarnings(services: ServiceManifest[]): string[] {
  return [...groupByName(services).values()]
    .filter((group) => group.length > 1)
    .map(
      (group) =>
        `${group.length} services are named ${group[0]?.name}: ${group.map((s) => s.url ?? s.source).join(" and ")}; a dependency on that name resolves only by repo URL`,
    );
}

export function checkHandshake(services: ServiceManifest[], mode: Mode): HandshakeResult {
  const labels = serviceLabels(services);
  const edges = services.flatMap((service, index) => service.dependencies.map((dependency) => checkEdge(services, labels, index, dependency, mode)));
  const results = services.map((service, index) => {
    const failures = edges.filter((e) => e.fromService === index).flatMap((e) => e.failures);
    return {
      name: service.name,
      label: labels[index] as string,
      source: service.url ?? service.source,
      version: service.contract?.version ?? service.version,
      handshake: failures.length === 0,
      failures,
    };
  });
  return { handshake: results.every((r) => r.handshake), mode, services: results, edges, warnings: duplicateNameWarnings(services) };
}
