// Where the API server is and how to authenticate to it: a kubeconfig (--kubeconfig,
// $KUBECONFIG, ~/.kube/config) or the in-cluster ServiceAccount. Certificates, keys,
// bearer tokens (a token file is re-read, as bound tokens rotate), basic auth and
// insecure-skip-tls-verify are read here. Only a user with an exec or auth-provider plugin
// loads client-node, whose KubeConfig runs plugins: loading it costs about 60 MiB of RSS,
// the largest single part of the operator's memory (docs/adr/0011-own-kubeconfig-loader.md).

import { existsSync, readFileSync } from "node:fs";
import type https from "node:https";
import os from "node:os";
import path from "node:path";
import { parse } from "yaml";

/** The API server's address and a way to add credentials to a request. */
export interface ClusterAccess {
  server: string;
  /** The context's namespace (or the ServiceAccount's, in a cluster), for commands that default to it. */
  namespace?: string;
  /** Adds the TLS material and the Authorization header to a request's options. */
  apply(options: https.RequestOptions): Promise<void>;
}

interface NamedCluster {
  name: string;
  cluster?: {
    server?: string;
    "certificate-authority"?: string;
    "certificate-authority-data"?: string;
    "insecure-skip-tls-verify"?: boolean;
    "tls-server-name"?: string;
  };
}
interface NamedUser {
  name: string;
  user?: {
    "client-certificate"?: string;
    "client-certificate-data"?: string;
    "client-key"?: string;
    "client-key-data"?: string;
    token?: string;
    tokenFile?: string;
    username?: string;
    password?: string;
    exec?: unknown;
    "auth-provider"?: unknown;
  };
}
interface NamedContext {
  name: string;
  context?: { cluster?: string; user?: string; namespace?: string };
}
interface KubeconfigFile {
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: NamedContext[];
  "current-context"?: string;
}

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";
/** How long a token file's contents are used before it is read again. */
const TOKEN_FILE_TTL_MS = 60_000;

/**
 * Loads from the path given, $KUBECONFIG (a list, merged: first wins), ~/.kube/config, or the
 * in-cluster ServiceAccount; `context` picks a context other than the current one (--context).
 */
export function loadClusterAccess(file?: string, context?: string): ClusterAccess {
  if (file) return fromFiles([file], context);
  const fromEnv = (process.env.KUBECONFIG ?? "").split(path.delimiter).filter(Boolean);
  if (fromEnv.length > 0)
    return fromFiles(
      fromEnv.filter((f) => existsSync(f)),
      context,
    );
  const home = path.join(os.homedir(), ".kube", "config");
  if (existsSync(home)) return fromFiles([home], context);
  if (process.env.KUBERNETES_SERVICE_HOST) return inCluster();
  throw new Error("no kubeconfig: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a cluster");
}

function inCluster(): ClusterAccess {
  const host = process.env.KUBERNETES_SERVICE_HOST ?? "";
  const port = process.env.KUBERNETES_SERVICE_PORT ?? "443";
  const ca = readFileSync(path.join(SERVICE_ACCOUNT, "ca.crt"));
  const token = tokenReader(path.join(SERVICE_ACCOUNT, "token"));
  const namespaceFile = path.join(SERVICE_ACCOUNT, "namespace");
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    namespace: existsSync(namespaceFile) ? readFileSync(namespaceFile, "utf8").trim() : undefined,
    apply: (options) => {
      options.ca = ca;
      options.headers = { ...options.headers, Authorization: `Bearer ${token()}` };
      return Promise.resolve();
    },
  };
}

interface Merged {
  clusters: NamedCluster[];
  users: NamedUser[];
  contexts: NamedContext[];
  current?: string;
  /** The folder of the file each entry came from: relative paths in it are relative to that. */
  bases: Map<object, string>;
}

/** The files merged as kubectl merges them: the first entry of a name wins, and the first current-context. */
function mergeFiles(files: string[]): Merged {
  const merged: Merged = { clusters: [], users: [], contexts: [], bases: new Map() };
  for (const file of files) {
    let doc: KubeconfigFile;
    try {
      doc = (parse(readFileSync(file, "utf8")) ?? {}) as KubeconfigFile;
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
    }
    for (const key of ["clusters", "users", "contexts"] as const) {
      const list = merged[key] as { name: string }[];
      for (const entry of doc[key] ?? []) {
        if (list.some((e) => e.name === entry.name)) continue;
        list.push(entry);
        merged.bases.set(entry, path.dirname(path.resolve(file)));
      }
    }
    merged.current ??= doc["current-context"];
  }
  return merged;
}

function fromFiles(files: string[], contextName?: string): ClusterAccess {
  if (files.length === 0) throw new Error("none of the files in KUBECONFIG exists");
  const merged = mergeFiles(files);
  const where = files.join(path.delimiter);
  const context = chosenContext(merged, where, contextName);
  const cluster = merged.clusters.find((c) => c.name === context.cluster);
  const server = cluster?.cluster?.server;
  if (!cluster || !server) throw new Error(`${where}: the current context's cluster ${JSON.stringify(context.cluster ?? "")} has no server`);
  const user = merged.users.find((u) => u.name === context.user);
  if (user?.user?.exec || user?.user?.["auth-provider"]) return { ...withPlugin(files, server, contextName), namespace: context.namespace };
  const tls = tlsOf(merged, cluster, user);
  const authorization = authorizationOf(user?.user ?? {}, user ? merged.bases.get(user) : undefined);
  return {
    server,
    namespace: context.namespace,
    apply: (options) => {
      Object.assign(options, tls);
      const header = authorization();
      if (header) options.headers = { ...options.headers, Authorization: header };
      return Promise.resolve();
    },
  };
}

/** The context named by --context, else the current one; an error names which was asked for. */
function chosenContext(merged: Merged, where: string, name: string | undefined): NonNullable<NamedContext["context"]> {
  const chosen = name ?? merged.current;
  const context = merged.contexts.find((c) => c.name === chosen)?.context;
  if (!context) throw new Error(`${where}: ${name ? "context" : "current-context"} ${JSON.stringify(chosen ?? "")} names no context`);
  return context;
}

/** A cluster's CA and a user's client certificate and key (inline, or files relative to their kubeconfig), and the TLS options. */
function tlsOf(merged: Merged, cluster: NamedCluster, user: NamedUser | undefined): https.RequestOptions {
  const read = (entry: object | undefined, inline: string | undefined, file: string | undefined): Buffer | undefined =>
    inline ? Buffer.from(inline, "base64") : file && entry ? readFileSync(path.resolve(merged.bases.get(entry) ?? ".", file)) : undefined;
  const c = cluster.cluster ?? {};
  const u = user?.user ?? {};
  const options: https.RequestOptions = {
    ca: read(cluster, c["certificate-authority-data"], c["certificate-authority"]),
    cert: read(user, u["client-certificate-data"], u["client-certificate"]),
    key: read(user, u["client-key-data"], u["client-key"]),
    rejectUnauthorized: c["insecure-skip-tls-verify"] !== true,
    servername: c["tls-server-name"],
  };
  // Leave out what is not set, so that Node's defaults stand.
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

/** The Authorization header of a user: a token, a token file (re-read), or basic auth. */
function authorizationOf(user: NonNullable<NamedUser["user"]>, base: string | undefined): () => string | undefined {
  if (user.token) return () => `Bearer ${user.token}`;
  if (user.tokenFile) {
    const token = tokenReader(path.resolve(base ?? ".", user.tokenFile));
    return () => `Bearer ${token()}`;
  }
  if (user.username !== undefined) {
    const basic = Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64");
    return () => `Basic ${basic}`;
  }
  return () => undefined;
}

/** An exec or auth-provider user: client-node's KubeConfig runs the plugin (loaded only here). */
function withPlugin(files: string[], server: string, context?: string): ClusterAccess {
  const config = import("@kubernetes/client-node").then(({ KubeConfig }) => {
    const kc = new KubeConfig();
    if (files.length === 1) kc.loadFromFile(files[0] as string);
    else kc.loadFromDefault();
    if (context) kc.setCurrentContext(context);
    return kc;
  });
  return { server, apply: async (options) => (await config).applyToHTTPSOptions(options) };
}

/** A token file, read again once a minute (projected ServiceAccount tokens rotate). */
function tokenReader(file: string): () => string {
  let token = "";
  let readAt = 0;
  return () => {
    if (Date.now() - readAt > TOKEN_FILE_TTL_MS) {
      token = readFileSync(file, "utf8").trim();
      readAt = Date.now();
    }
    return token;
  };
}
