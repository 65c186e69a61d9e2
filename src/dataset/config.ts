// The old publish/retrieve script's config.ini, read so that existing users keep their file:
//   [WORKING_ENVIRONMENT] WORKDIR, OPERATOR, IMPORTDIR
//   [ETCD] HOST, PORT
// Pure: the file's text in, settings out, or an error naming the file and the key.

import { parse } from "ini";

export interface OldConfig {
  workDir?: string;
  operator?: string;
  importDir?: string;
  /** http://HOST:PORT, as the old tool spoke to etcd without TLS. */
  endpoint?: string;
}

export class ConfigError extends Error {}

export function parseOldConfig(file: string, text: string): OldConfig {
  const sections = parse(text) as Record<string, Record<string, unknown> | undefined>;
  const env = sections.WORKING_ENVIRONMENT ?? {};
  const etcd = sections.ETCD ?? {};
  const field = (section: Record<string, unknown>, name: string, where: string): string | undefined => {
    const value = section[name];
    if (value === undefined || value === "") return undefined;
    if (typeof value !== "string") throw new ConfigError(`${file}: [${where}] ${name}: expected a single value`);
    return value.trim();
  };
  const host = field(etcd, "HOST", "ETCD");
  const port = field(etcd, "PORT", "ETCD");
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw new ConfigError(`${file}: [ETCD] PORT: "${port}" is not a port number`);
  // The old tool spoke plain HTTP to HOST:PORT; HOST may now carry a scheme (https://) for TLS.
  const base = host && (/^https?:\/\//.test(host) ? host.replace(/\/+$/, "") : `http://${host}`);
  const endpoint = base && (/:\d+$/.test(base) ? base : `${base}:${port ?? "2379"}`);
  return {
    workDir: field(env, "WORKDIR", "WORKING_ENVIRONMENT"),
    operator: field(env, "OPERATOR", "WORKING_ENVIRONMENT"),
    importDir: field(env, "IMPORTDIR", "WORKING_ENVIRONMENT"),
    endpoint,
  };
}
