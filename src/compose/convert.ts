// Compose values in Kubernetes terms: commands, durations, byte sizes, CPUs, ports,
// healthchecks and environment. Pure; each throws ComposeInvalidError naming the key.

import { parse as shellParse } from "shell-quote";
import { parseDuration } from "../util/duration.js";
import type { ComposeService } from "./project.js";

/** A field of a service that cannot be converted; the caller adds the file. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "FieldError";
  }
}

/** A scalar as compose would print it; a mapping or list as JSON (for messages). */
export function text(value: unknown): string {
  return value !== null && typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** A command in either compose form, as an argument vector (the string form is split as a shell would). */
export function commandArgs(value: unknown, field: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== "string") throw new FieldError(field, "must be a string or a list of strings");
  return shellParse(value).map((token) => {
    if (typeof token !== "string") throw new FieldError(field, `"${value}" uses shell syntax; give the command as a list`);
    return token;
  });
}

export function seconds(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  try {
    return Math.max(1, Math.round(parseDuration(text(value)) / 1000));
  } catch {
    throw new FieldError(field, `"${text(value)}" is not a duration such as 10s or 1m30s`);
  }
}

const BYTE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** A compose byte size (512m, 1g, 1048576) as a Kubernetes quantity in its canonical form. */
export function quantityBytes(value: unknown, field: string): string {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text(value).trim());
  const unit = match && BYTE_UNITS[match[2]!.toLowerCase()];
  if (!match || unit === undefined || unit === null) throw new FieldError(field, `"${text(value)}" is not a byte size such as 512m or 1g`);
  const bytes = Math.round(Number(match[1]) * unit);
  for (const [suffix, size] of [
    ["Gi", 1024 ** 3],
    ["Mi", 1024 ** 2],
    ["Ki", 1024],
  ] as const) {
    if (bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  return String(bytes);
}

/** compose `cpus: 0.5` as `500m`, `cpus: 2` as `2`. */
export function quantityCpus(value: unknown, field: string): string {
  const cpus = Number(value);
  if (!Number.isFinite(cpus) || cpus <= 0) throw new FieldError(field, `"${text(value)}" is not a number of CPUs`);
  const milli = Math.round(cpus * 1000);
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

export interface PortSpec {
  target: number;
  published?: number;
  protocol: "TCP" | "UDP";
}

function portNumber(text: string, field: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) throw new FieldError(field, `"${text}" is not a port (ranges are not supported)`);
  return port;
}

/** `ports` entries, short ("8080:80/udp", "127.0.0.1:8080:80") or long ({target, published, protocol}). */
export function parsePort(value: unknown, field: string): PortSpec {
  if (value && typeof value === "object") {
    const long = value as { target?: unknown; published?: unknown; protocol?: string };
    return {
      target: portNumber(text(long.target), `${field}.target`),
      ...(long.published !== undefined ? { published: portNumber(text(long.published), `${field}.published`) } : {}),
      protocol: long.protocol?.toLowerCase() === "udp" ? "UDP" : "TCP",
    };
  }
  const [ports = "", protocol = "tcp"] = text(value).split("/");
  const parts = ports.split(":");
  const target = portNumber(parts.at(-1) ?? "", field);
  const published = parts.length > 1 ? portNumber(parts.at(-2) ?? "", field) : undefined;
  return { target, ...(published !== undefined ? { published } : {}), protocol: protocol.toLowerCase() === "udp" ? "UDP" : "TCP" };
}

/** compose `healthcheck` as a readiness probe; undefined when there is none or it is disabled. */
export function readinessProbe(service: ComposeService, field: string): Record<string, unknown> | undefined {
  const check = service.healthcheck as Record<string, unknown> | undefined;
  if (!check || check.disable === true) return undefined;
  const test = check.test;
  let command: string[];
  if (typeof test === "string") command = ["/bin/sh", "-c", test];
  else if (Array.isArray(test) && test[0] === "CMD") command = test.slice(1).map(String);
  else if (Array.isArray(test) && test[0] === "CMD-SHELL") command = ["/bin/sh", "-c", test.slice(1).join(" ")];
  else if (Array.isArray(test) && test[0] === "NONE") return undefined;
  else throw new FieldError(`${field}.test`, 'must be a string or a list starting with "CMD", "CMD-SHELL" or "NONE"');
  return {
    exec: { command },
    periodSeconds: seconds(check.interval, `${field}.interval`) ?? 30,
    timeoutSeconds: seconds(check.timeout, `${field}.timeout`) ?? 30,
    failureThreshold: check.retries === undefined ? 3 : Number(check.retries),
    initialDelaySeconds: check.start_period === undefined ? 0 : (seconds(check.start_period, `${field}.start_period`) ?? 0),
  };
}

/** `environment` in list form (A=1, B) or map form, as name → value; a bare name takes its value from `variables`. */
export function environmentOf(value: unknown, variables: Readonly<Record<string, string>>): Map<string, string> {
  const out = new Map<string, string>();
  const set = (name: string, raw: unknown): void => {
    if (raw === null || raw === undefined) {
      const fallback = variables[name];
      if (fallback !== undefined) out.set(name, fallback);
    } else out.set(name, text(raw));
  };
  if (Array.isArray(value)) {
    for (const item of value.map(String)) {
      const eq = item.indexOf("=");
      if (eq < 0) set(item, undefined);
      else set(item.slice(0, eq), item.slice(eq + 1));
    }
  } else if (value && typeof value === "object") {
    for (const [name, raw] of Object.entries(value)) set(name, raw);
  }
  return out;
}

/** `env_file` entries as {path, required}. */
export function envFilesOf(value: unknown): { path: string; required: boolean }[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  return list.map((item) =>
    typeof item === "string"
      ? { path: item, required: true }
      : { path: String((item as { path: unknown }).path), required: (item as { required?: boolean }).required !== false },
  );
}
