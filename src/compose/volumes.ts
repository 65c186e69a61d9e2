// Compose volumes in Kubernetes terms: a bind mount of a project path becomes a ConfigMap
// (folders keep their nesting through item paths; a single file is mounted with subPath),
// a named volume a PersistentVolumeClaim, an anonymous volume or tmpfs an emptyDir. A bind
// mount outside the project cannot be honoured and is refused. Pure, apart from listing the
// project's files (ids only: no file is read until a ConfigMap is built).

import { FieldError } from "./convert.js";
import type { ProjectEntry, ProjectFiles } from "./files.js";
import { insideProject } from "./project.js";

/** Kubernetes refuses objects over 1 MiB. */
export const CONFIGMAP_LIMIT_BYTES = 1024 * 1024;

export interface ConfigItem {
  key: string;
  /** Path below the mount (the file name for a single file). */
  path: string;
  /** Project path and git id of the file. */
  file: ProjectEntry;
}

export interface ConfigMapPlan {
  name: string;
  /** The project path mounted. */
  source: string;
  /** The compose field that mounts it (services.web.volumes[0]), for errors. */
  field: string;
  single: boolean;
  items: ConfigItem[];
}

export type Mount =
  | { kind: "config"; target: string; readOnly: boolean; configMap: ConfigMapPlan }
  | { kind: "claim"; target: string; readOnly: boolean; volume: string }
  | { kind: "emptyDir"; target: string; memory: boolean };

interface VolumeSpec {
  type: "bind" | "volume" | "tmpfs";
  source?: string;
  target: string;
  readOnly: boolean;
}

function parseVolume(value: unknown, field: string): VolumeSpec {
  if (value && typeof value === "object") {
    const long = value as { type?: string; source?: string; target?: string; read_only?: boolean };
    if (!long.target) throw new FieldError(`${field}.target`, "is required");
    const type = long.type === "bind" || long.type === "tmpfs" ? long.type : "volume";
    return { type, source: long.source, target: long.target, readOnly: long.read_only === true };
  }
  const parts = String(value).split(":");
  if (parts.length === 1) return { type: "volume", target: parts[0]!, readOnly: false };
  const [source = "", target = "", mode = ""] = parts;
  const bind = /^[./~]/.test(source);
  return { type: bind ? "bind" : "volume", source, target, readOnly: mode.split(",").includes("ro") };
}

/** A ConfigMap key for a path: only [-._a-zA-Z0-9], unique within the map. */
function configKey(relPath: string, taken: Set<string>): string {
  const base = relPath.replace(/\//g, "__").replace(/[^-._a-zA-Z0-9]/g, "_");
  let key = base;
  for (let n = 2; taken.has(key); n++) key = `${base}-${n}`;
  taken.add(key);
  return key;
}

/** `logstash/pipeline` as `logstash-pipeline`, for object names. */
export function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "") || "root"
  );
}

async function configMount(files: ProjectFiles, service: string, spec: VolumeSpec, field: string): Promise<Mount> {
  const source = insideProject(spec.source ?? "");
  if (source === undefined) throw new FieldError(field, `bind mount of "${spec.source}" is outside the project; only project paths can be mounted`);
  const entry = await files.stat(source);
  if (!entry) throw new FieldError(field, `bind mount source "${spec.source}" does not exist in the project`);
  const name = `${service}-${slug(source)}`.slice(0, 253).replace(/-+$/, "");
  const taken = new Set<string>();
  const single = entry.type === "blob";
  const listed = single ? [entry] : await files.listFiles(source);
  const items = listed.map((file) => {
    const below = single ? source.split("/").pop()! : file.path.slice(source ? source.length + 1 : 0);
    return { key: configKey(below, taken), path: below, file };
  });
  return { kind: "config", target: spec.target, readOnly: true, configMap: { name, source, field, single, items } };
}

/** Every `volumes` entry of a service as a mount. */
export async function mountsOf(files: ProjectFiles, service: string, value: unknown, declared: Record<string, unknown>, field: string): Promise<Mount[]> {
  const mounts: Mount[] = [];
  for (const [i, item] of ((value as unknown[] | undefined) ?? []).entries()) {
    const spec = parseVolume(item, `${field}[${i}]`);
    if (spec.type === "bind") mounts.push(await configMount(files, service, spec, `${field}[${i}]`));
    else if (spec.type === "tmpfs" || !spec.source) mounts.push({ kind: "emptyDir", target: spec.target, memory: spec.type === "tmpfs" });
    else if (!(spec.source in declared))
      throw new FieldError(`${field}[${i}]`, `named volume "${spec.source}" is not declared under the top-level volumes key`);
    else mounts.push({ kind: "claim", target: spec.target, readOnly: spec.readOnly, volume: spec.source });
  }
  return mounts;
}

/** The pod's volumes and the container's mounts for a service's mounts. */
export function podVolumes(mounts: Mount[], claimName: (volume: string) => string): { volumes: unknown[]; volumeMounts: unknown[] } {
  const volumes: unknown[] = [];
  const volumeMounts: unknown[] = [];
  mounts.forEach((mount, i) => {
    const name = `v${i}`;
    if (mount.kind === "config") {
      const { configMap } = mount;
      const items = configMap.items.map((item) => ({ key: item.key, path: item.path }));
      volumes.push({ name, configMap: { name: configMap.name, items } });
      volumeMounts.push({ name, mountPath: mount.target, readOnly: true, ...(configMap.single ? { subPath: items[0]?.path } : {}) });
    } else if (mount.kind === "claim") {
      volumes.push({ name, persistentVolumeClaim: { claimName: claimName(mount.volume) } });
      volumeMounts.push({ name, mountPath: mount.target, ...(mount.readOnly ? { readOnly: true } : {}) });
    } else {
      volumes.push({ name, emptyDir: mount.memory ? { medium: "Memory" } : {} });
      volumeMounts.push({ name, mountPath: mount.target });
    }
  });
  return { volumes, volumeMounts };
}

/** A ConfigMap's data, read from the project; refuses one over the object size limit, naming the path. */
export async function configMapData(files: ProjectFiles, plan: ConfigMapPlan): Promise<{ data: Record<string, string>; binaryData: Record<string, string> }> {
  const data: Record<string, string> = {};
  const binaryData: Record<string, string> = {};
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let bytes = 0;
  for (const item of plan.items) {
    const content = (await files.read(item.file.path)) ?? new Uint8Array();
    bytes += content.byteLength;
    if (bytes > CONFIGMAP_LIMIT_BYTES) throw new FieldError(plan.field, `the files mounted from "${plan.source || "."}" exceed the 1 MiB object limit`);
    try {
      data[item.key] = decoder.decode(content);
    } catch {
      binaryData[item.key] = Buffer.from(content).toString("base64");
    }
  }
  return { data, binaryData };
}
