// The files in a service's config repo, read as teams already write them: service.yaml,
// contract.yaml (or an OpenAPI 3 document), interface.yaml. Unknown fields are ignored;
// a missing or malformed field is a ManifestError naming the repo, the file and the field.

import semver from "semver";
import { parseDocument } from "yaml";
import { z } from "zod";
import { fieldPath } from "../util/fields.js";

export interface Endpoint {
  method: string;
  path: string;
}

export interface Dependency {
  /** The key in desiredState, e.g. stockService. */
  key: string;
  sync: "strict" | "relaxed";
  repo?: string;
  version?: string;
}

export interface InterfaceDependency {
  name: string;
  uuid?: string;
  outbound: Endpoint[];
}

export interface ServiceManifest {
  name: string;
  version?: string;
  /** metadata.repo and the URL it was read from: both identify the service. */
  repos: string[];
  /** Where it was read from, for messages. */
  source: string;
  /** The repository URL it was read from, if any: with the path, the service's identity. */
  url?: string;
  dependencies: Dependency[];
  contract?: { version?: string; endpoints: Endpoint[] };
  interface?: { version?: string; dependencies: InterfaceDependency[] };
}

export class ManifestError extends Error {
  constructor(
    readonly source: string,
    readonly file: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${source}: ${file}${field ? `: ${field}` : ""}: ${detail}`);
    this.name = "ManifestError";
  }
}

// A declared version is 1, 1.4 or 1.4.2 (a leading v, a pre-release and build metadata
// allowed); an expected version may also be a semver range (^2.1, >=2 <3). Anything else
// ("banana") would only ever agree with itself, so it is refused where it is read.
const VERSION = /^v?\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const versionText = z.union([z.string(), z.number()]).transform((v) => String(v).trim());
const versionField = versionText.refine((v) => VERSION.test(v), { error: (issue) => `${JSON.stringify(issue.input)} is not a version (expected e.g. 1.4.2)` });
const expectedVersionField = versionText.refine((v) => VERSION.test(v) || semver.validRange(v) !== null, {
  error: (issue) => `${JSON.stringify(issue.input)} is neither a version nor a semver range (expected e.g. 2.1.0 or ^2.1)`,
});
const endpoint = z.object({ method: z.string().min(1), path: z.string().min(1) });

const serviceFile = z.object({
  version: versionField.optional(),
  metadata: z.object({
    name: z.string().min(1),
    version: versionField.optional(),
    repo: z.string().optional(),
  }),
  desiredState: z
    .record(
      z.string(),
      z.object({
        sync: z.enum(["strict", "relaxed"]).default("strict"),
        repo: z.string().optional(),
        version: expectedVersionField.optional(),
        dependencies: z.array(z.object({ uuid: z.string().optional(), name: z.string().optional() })).optional(),
      }),
    )
    .nullish(),
});

const contractFile = z.object({
  version: versionField.optional(),
  apiSpec: z.object({ endpoints: z.array(endpoint).default([]) }).nullish(),
});

const openApiFile = z.object({
  openapi: z.string().regex(/^3\./, "must be an OpenAPI 3 document"),
  info: z.object({ version: versionField }),
  paths: z.record(z.string(), z.record(z.string(), z.unknown()).nullable()).default({}),
});

const interfaceFile = z.object({
  version: versionField.optional(),
  dependencies: z
    .array(
      z.object({
        name: z.string().min(1),
        uuid: z.string().optional(),
        outbound: z.union([endpoint, z.array(endpoint)]).optional(),
        inbound: z.unknown().optional(),
      }),
    )
    .nullish(),
});

const HTTP_METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);

/** The raw texts of a service's config folder; file names as found. */
export interface ServiceFiles {
  source: string;
  /** The repository URL it was read from, if any. */
  url?: string;
  service?: string;
  /** Which name service.yaml was found under (service.yaml or service.yml). */
  serviceFile?: string;
  contract?: string;
  openapi?: { name: string; text: string };
  interface?: string;
}

export const CONTRACT_FILES = ["contract.yaml", "contract.yml"];
export const OPENAPI_FILES = ["openapi.yaml", "openapi.yml", "openapi.json"];

/** Parses one service's files into a manifest, or throws a ManifestError. */
export function parseService(files: ServiceFiles): ServiceManifest {
  if (files.service === undefined) throw new ManifestError(files.source, "service.yaml", "", "file not found");
  const service = parseFile(files.source, "service.yaml", files.service, serviceFile);
  const manifest: ServiceManifest = {
    name: service.metadata.name,
    version: stripV(service.metadata.version ?? service.version),
    repos: [service.metadata.repo, files.url].filter((r): r is string => Boolean(r)),
    source: files.source,
    url: files.url,
    dependencies: Object.entries(service.desiredState ?? {}).map(([key, d]) => ({ key, sync: d.sync, repo: d.repo, version: stripV(d.version) })),
  };
  if (files.contract !== undefined) {
    const contract = parseFile(files.source, "contract.yaml", files.contract, contractFile);
    manifest.contract = { version: stripV(contract.version), endpoints: contract.apiSpec?.endpoints ?? [] };
  } else if (files.openapi) {
    const doc = parseFile(files.source, files.openapi.name, files.openapi.text, openApiFile, MAX_OPENAPI_MIB);
    const endpoints = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops ?? {})
        .filter((m) => HTTP_METHODS.has(m.toLowerCase()))
        .map((method) => ({ method: method.toUpperCase(), path })),
    );
    manifest.contract = { version: stripV(doc.info.version), endpoints };
  }
  if (files.interface !== undefined) {
    const iface = parseFile(files.source, "interface.yaml", files.interface, interfaceFile);
    manifest.interface = {
      version: stripV(iface.version),
      dependencies: (iface.dependencies ?? []).map((d) => ({
        name: d.name,
        uuid: d.uuid,
        outbound: d.outbound === undefined ? [] : Array.isArray(d.outbound) ? d.outbound : [d.outbound],
      })),
    };
  }
  return manifest;
}

/** A manifest is a few kilobytes, an OpenAPI document rarely a few MiB; past these a file is refused before it is parsed. */
const MAX_MANIFEST_MIB = 1;
const MAX_OPENAPI_MIB = 16;

function parseFile<T>(source: string, file: string, text: string, schema: z.ZodType<T>, maxMiB = MAX_MANIFEST_MIB): T {
  const mib = Buffer.byteLength(text) / (1 << 20);
  if (mib > maxMiB) throw new ManifestError(source, file, "", `${mib.toFixed(1)} MiB is larger than the ${maxMiB} MiB such a file may be`);
  const doc = parseDocument(text, { prettyErrors: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const where = syntax.linePos?.[0] ? `line ${syntax.linePos[0].line}, column ${syntax.linePos[0].col}` : "";
    throw new ManifestError(source, file, where, `invalid YAML: ${syntax.message.split("\n")[0] ?? syntax.code}`);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    // The yaml library refuses an alias bomb (aliases that expand past the limit) with a ReferenceError.
    throw new ManifestError(source, file, "", `refused: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(value ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ManifestError(source, file, issue ? fieldPath("", issue.path).replace(/^\./, "") : "", issue?.message ?? "invalid");
  }
  return parsed.data;
}

function stripV(version: string | undefined): string | undefined {
  return version?.trim().replace(/^v(?=\d)/i, "") || undefined;
}
