// The handshake: for every edge "A depends on B", resolve B, compare versions and check
// that every call A makes towards B exists in B's contract. Pure: manifests in, a result
// out. The controller and `gitsync handshake check` both call checkHandshake().

import semver from "semver";
import { normalizeRepoUrl } from "../git/url.js";
import type { Dependency, Endpoint, ServiceManifest } from "./manifests.js";

export { normalizeRepoUrl };

export type Mode = "strict" | "relaxed";
export type FailureReason = "DependencyNotFound" | "VersionMismatch" | "EndpointMissing" | "InterfaceMissing";

export interface Failure {
  dependency: string;
  reason: FailureReason;
  message: string;
}

export interface EdgeResult {
  from: string;
  to: string;
  mode: Mode;
  failures: Failure[];
}

export interface ServiceResult {
  name: string;
  version?: string;
  handshake: boolean;
  failures: Failure[];
}

export interface HandshakeResult {
  handshake: boolean;
  mode: Mode;
  services: ServiceResult[];
  edges: EdgeResult[];
}

/** Names compared without case or punctuation: stockService = stock-service. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** Paths compared with parameter names ignored: /stock/{productId} = /stock/{id} = /stock/:id. */
export function normalizePath(path: string): string {
  return `/${path.trim().replace(/^\/+|\/+$/g, "")}`.replace(/\{[^}/]*\}|:[^/]+/g, "{}");
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

function checkEdge(from: ServiceManifest, dependency: Dependency, services: ServiceManifest[], mode: Mode): EdgeResult {
  const target = resolveDependency(dependency, services);
  const edge: EdgeResult = { from: from.name, to: target?.name ?? dependency.key, mode: edgeMode(mode, dependency.sync), failures: [] };
  const fail = (reason: FailureReason, message: string): void => void edge.failures.push({ dependency: edge.to, reason, message });
  if (!target) {
    const where = dependency.repo ? `repo ${dependency.repo} or name ${dependency.key}` : `name ${dependency.key}`;
    fail("DependencyNotFound", `${from.name} depends on ${dependency.key}, but no service in this handshake matches ${where}`);
    return edge;
  }

  const expected = dependency.version ?? from.contract?.version;
  const actual = target.contract?.version ?? target.version;
  const what = target.contract?.version ? `${target.name}'s contract is` : `${target.name} is at`;
  if (expected && !actual) {
    fail("VersionMismatch", `${from.name} expects ${target.name} ${expected} (${edge.mode}), but ${target.name} declares no version`);
  } else if (expected && actual && !versionAgrees(expected, actual, edge.mode)) {
    const wanted = edge.mode === "strict" ? expected : semver.validRange(expected) && !semver.valid(expected) ? `in ${expected}` : `compatible with ${expected}`;
    fail("VersionMismatch", `${from.name} expects ${target.name} ${wanted} (${edge.mode}), but ${what} ${actual}`);
  }

  if (from.interface) {
    const listed = findByName(target.name, from.interface.dependencies) ?? findByName(dependency.key, from.interface.dependencies);
    if (!listed && edge.mode === "strict") {
      fail("InterfaceMissing", `${from.name} depends on ${target.name} in service.yaml, but its interface.yaml does not list ${target.name} (strict)`);
    }
    for (const call of listed?.outbound ?? []) {
      if (!target.contract) {
        fail("EndpointMissing", `${from.name} calls ${call.method.toUpperCase()} ${call.path} on ${target.name}, but ${target.name} has no contract`);
      } else if (!target.contract.endpoints.some((e) => sameEndpoint(e, call))) {
        fail("EndpointMissing", `${from.name} calls ${call.method.toUpperCase()} ${call.path} on ${target.name}, but ${target.name}'s contract has no such endpoint`);
      }
    }
  }
  return edge;
}

export function checkHandshake(services: ServiceManifest[], mode: Mode): HandshakeResult {
  const edges = services.flatMap((service) => service.dependencies.map((dependency) => checkEdge(service, dependency, services, mode)));
  const results = services.map((service) => {
    const failures = edges.filter((e) => e.from === service.name).flatMap((e) => e.failures);
    return { name: service.name, version: service.contract?.version ?? service.version, handshake: failures.length === 0, failures };
  });
  return { handshake: results.every((r) => r.handshake), mode, services: results, edges };
}
