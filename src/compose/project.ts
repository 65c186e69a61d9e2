// A compose project read from its files: the compose file found in the specification's
// lookup order, the .env file, interpolation, and validation against the compose schema.
// Every error names the file and the field. Files named X.age stand for X, decrypted by
// the caller's function, so env files and config may hold secrets.

import path from "node:path";
import { parse as parseDotenv } from "dotenv";
import { parseDocument } from "yaml";
import type { ProjectEntry, ProjectFiles } from "./files.js";
import { interpolate, InterpolationError } from "./interpolate.js";
import { validateCompose } from "./schema.js";

export const COMPOSE_FILES = ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"] as const;
export const ENCRYPTED_SUFFIX = ".age";

/** The project cannot be deployed as written; names the file, and the service and key where there is one. */
export class ComposeInvalidError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${file}: ${field ? `${field}: ` : ""}${detail}`);
    this.name = "ComposeInvalidError";
  }
}

export type Decrypt = (data: Uint8Array, file: string) => Promise<Uint8Array>;

export interface LoadOptions {
  /** Default: the first of COMPOSE_FILES that exists. */
  composeFile?: string;
  /** Default `.env`, which may be absent; a named file must exist. */
  envFile?: string;
  decrypt?: Decrypt;
  /** The active profiles, as `docker compose --profile`; default COMPOSE_PROFILES of the env file. "*" activates every one. */
  profiles?: string[];
}

/** A file's bytes and id, read directly or decrypted from X.age. */
export interface ProjectFile {
  path: string;
  entry: ProjectEntry;
  data: Uint8Array;
  encrypted: boolean;
}

/** What compose says about one service, after interpolation and validation. */
export type ComposeService = Record<string, unknown> & { image?: string; user?: string | number; working_dir?: string; pull_policy?: string };

export interface Project {
  files: ProjectFiles;
  composeFile: ProjectFile;
  envFile?: ProjectFile;
  variables: Record<string, string>;
  services: Record<string, ComposeService>;
  volumes: Record<string, Record<string, unknown> | null>;
  /** Every file read so far (compose, .env, env files), by project path. */
  decrypt?: Decrypt;
}

/** Normalizes a project-relative path; undefined when it leaves the project. */
export function insideProject(relPath: string): string | undefined {
  const normalized = path.posix.normalize(relPath.replace(/^\.\/+/, ""));
  if (normalized === "." || normalized === "./") return "";
  if (path.posix.isAbsolute(normalized) || normalized === ".." || normalized.startsWith("../")) return undefined;
  return normalized.replace(/\/$/, "");
}

/** Reads `relPath`, or `relPath.age` decrypted; undefined when neither exists. */
export async function readProjectFile(files: ProjectFiles, relPath: string, decrypt?: Decrypt): Promise<ProjectFile | undefined> {
  const plain = await files.stat(relPath);
  if (plain?.type === "blob") return { path: relPath, entry: plain, data: (await files.read(relPath)) ?? new Uint8Array(), encrypted: false };
  const sealedPath = relPath + ENCRYPTED_SUFFIX;
  const sealed = await files.stat(sealedPath);
  if (sealed?.type !== "blob") return undefined;
  if (!decrypt) throw new ComposeInvalidError(sealedPath, "", "the file is encrypted; set spec.decryption to an age identity that can read it");
  try {
    return { path: relPath, entry: sealed, data: await decrypt((await files.read(sealedPath)) ?? new Uint8Array(), sealedPath), encrypted: true };
  } catch (err) {
    throw new ComposeInvalidError(sealedPath, "", `cannot be decrypted: ${(err as Error).message}`);
  }
}

/** KEY=VALUE lines as compose reads them (the dotenv format); text only, so binary garbage is refused naming its line. */
export function parseEnvFile(file: ProjectFile): Record<string, string> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(file.data);
  } catch {
    throw new ComposeInvalidError(file.path, "", "is not UTF-8 text");
  }
  // eslint-disable-next-line no-control-regex
  const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.exec(text);
  if (control)
    throw new ComposeInvalidError(file.path, `line ${text.slice(0, control.index).split("\n").length}`, "holds a control character; expected KEY=VALUE lines");
  return parseDotenv(text);
}

async function findComposeFile(files: ProjectFiles, options: LoadOptions): Promise<ProjectFile> {
  const candidates = options.composeFile ? [options.composeFile] : COMPOSE_FILES;
  for (const name of candidates) {
    const file = await readProjectFile(files, name, options.decrypt);
    if (file) return file;
  }
  throw new ComposeInvalidError(files.label, "", `no compose file: looked for ${candidates.join(", ")}`);
}

function parseYaml(file: ProjectFile): unknown {
  const doc = parseDocument(new TextDecoder().decode(file.data), { merge: true });
  const error = doc.errors[0];
  if (error) throw new ComposeInvalidError(file.path, `line ${error.linePos?.[0].line ?? "?"}`, error.message.split("\n")[0] ?? error.message);
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    // The yaml library refuses an alias bomb (aliases that expand past the limit) with a ReferenceError.
    throw new ComposeInvalidError(file.path, "", `refused: ${(err as Error).message}`);
  }
}

interface Model {
  variables: Record<string, string>;
  services: Record<string, ComposeService>;
  volumes: Project["volumes"];
}

/**
 * Models by the ids of the compose and env files (and which were read): the same bytes parse,
 * interpolate and validate the same way, so a pass over an unchanged project skips all three.
 */
const models = new Map<string, Model>();
const MAX_MODELS = 256;

function parseModel(composeFile: ProjectFile, envFile: ProjectFile | undefined): Model {
  const variables = envFile ? parseEnvFile(envFile) : {};
  const raw = parseYaml(composeFile);
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new ComposeInvalidError(composeFile.path, "", "must be a mapping with a services key");
  let model: Record<string, unknown>;
  try {
    model = interpolate(raw, variables) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof InterpolationError) throw new ComposeInvalidError(composeFile.path, err.field, err.message.slice(err.field.length + 2));
    throw err;
  }
  const problems = validateCompose(model);
  if (problems.length) throw new ComposeInvalidError(composeFile.path, "", problems.join("; "));
  const services = (model.services ?? {}) as Record<string, ComposeService | null>;
  return {
    variables,
    services: Object.fromEntries(Object.entries(services).map(([name, service]) => [name, service ?? {}])),
    volumes: (model.volumes ?? {}) as Project["volumes"],
  };
}

/** Reads, interpolates and validates a project. */
export async function loadProject(files: ProjectFiles, options: LoadOptions = {}): Promise<Project> {
  const composeFile = await findComposeFile(files, options);
  const envPath = options.envFile ?? ".env";
  const envFile = await readProjectFile(files, envPath, options.decrypt);
  if (!envFile && options.envFile) throw new ComposeInvalidError(envPath, "", "the env file does not exist");
  const key = [composeFile.path, composeFile.entry.oid, envFile?.path, envFile?.entry.oid].join("\0");
  let model = models.get(key);
  if (!model) {
    model = parseModel(composeFile, envFile);
    if (models.size >= MAX_MODELS) models.clear();
    models.set(key, model);
  }
  // Each caller gets its own copy: renderers may annotate what they are given.
  const project = structuredClone(model);
  project.services = selectServices(project.services, options.profiles ?? profilesOf(project.variables), composeFile.path);
  return { files, composeFile, envFile, ...project, decrypt: options.decrypt };
}

/** COMPOSE_PROFILES: a comma-separated list. */
function profilesOf(variables: Record<string, string>): string[] {
  return (variables.COMPOSE_PROFILES ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
}

/**
 * The services `docker compose up` would run: those with no profiles, and those with a profile
 * that is active. A selected service that depends on one left out is an error naming both.
 */
export function selectServices(services: Record<string, ComposeService>, active: string[], file: string): Record<string, ComposeService> {
  const all = active.includes("*");
  const selected = Object.fromEntries(
    Object.entries(services).filter(([, service]) => {
      const profiles = (service.profiles ?? []) as string[];
      return profiles.length === 0 || all || profiles.some((p) => active.includes(p));
    }),
  );
  for (const [name, service] of Object.entries(selected)) {
    const dependsOn = service.depends_on;
    const needs = Array.isArray(dependsOn) ? (dependsOn as string[]) : Object.keys(dependsOn ?? {});
    for (const needed of needs) {
      if (needed in selected || !(needed in services)) continue;
      const profiles = ((services[needed]?.profiles ?? []) as string[]).join(", ");
      throw new ComposeInvalidError(
        file,
        `services.${name}.depends_on`,
        `${name} depends on ${needed}, which is not selected: its profiles are ${profiles}, and the active ones ${active.length ? active.join(", ") : "none"} (spec.profiles, --profile or COMPOSE_PROFILES)`,
      );
    }
  }
  return selected;
}
