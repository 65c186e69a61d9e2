// A thin REST client over the Kubernetes API. kubeconfig.ts loads the configuration and
// applies authentication; the requests are plain HTTP so that watches, server-side apply and
// status-subresource patches behave exactly as the API server defines.

import https from "node:https";
import type { Agent as HttpAgent, IncomingMessage } from "node:http";
import { http } from "../util/node-http.js";
import { GROUP, VERSION, type KindDefinition } from "../crds/common.js";
import { loadClusterAccess, type ClusterAccess } from "./kubeconfig.js";
import { apiRequests } from "./metrics.js";

export const FIELD_MANAGER = "gitsync-operator";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: unknown[];
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
}

export interface KubeList<T> {
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

/** An error answered by the API server, with its HTTP code and Status reason. */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = "KubeApiError";
  }
}

/** MicroTime as the API server parses it: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.code === 404;
export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.code === 409;
export const isGone = (err: unknown): boolean => err instanceof KubeApiError && err.code === 410;

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** The Accept header, e.g. METADATA_ONLY.list; default application/json. */
  accept?: string;
}

/** Lists and watches of object metadata only (PartialObjectMetadata), for caches that need no spec. */
export const METADATA_ONLY = {
  list: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
  watch: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
} as const;

/** Where a resource lives: group, version and plural, namespaced or not. */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

/** The built-in resources the runtime itself reads and writes. */
export const BuiltinResources = {
  secrets: { group: "", version: "v1", plural: "secrets", namespaced: true },
  configMaps: { group: "", version: "v1", plural: "configmaps", namespaced: true },
  events: { group: "events.k8s.io", version: "v1", plural: "events", namespaced: true },
  leases: { group: "coordination.k8s.io", version: "v1", plural: "leases", namespaced: true },
  serviceAccounts: { group: "", version: "v1", plural: "serviceaccounts", namespaced: true },
  customResourceDefinitions: { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions", namespaced: false },
} as const satisfies Record<string, ResourceRef>;

/** Where a kind's objects live in the API, from the same definition the CRD is generated from. */
export function resourceOf(def: Pick<KindDefinition, "group" | "version" | "plural">): ResourceRef {
  return { group: def.group ?? GROUP, version: def.version ?? VERSION, plural: def.plural, namespaced: true };
}

export function resourcePath(ref: ResourceRef, namespace?: string, name?: string, subresource?: string): string {
  const base = ref.group === "" ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const ns = ref.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  const tail = [name && encodeURIComponent(name), subresource].filter(Boolean).join("/");
  return `${base}${ns}/${ref.plural}${tail ? `/${tail}` : ""}`;
}

export class KubeClient {
  private agent: https.Agent | HttpAgent | undefined;
  private readonly server: URL;
  /** Names this client in the API server's logs and audit events; a replica adds its identity. */
  userAgent = "gitsync-operator";

  constructor(readonly access: ClusterAccess) {
    this.server = new URL(access.server);
  }

  /** Loads from --kubeconfig, $KUBECONFIG, ~/.kube/config, or the in-cluster ServiceAccount. */
  static fromKubeconfig(path?: string, context?: string): KubeClient {
    return new KubeClient(loadClusterAccess(path, context));
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options);
    const text = await readAll(response);
    const code = response.statusCode ?? 0;
    if (code >= 400) throw apiError(code, text, `${method} ${path}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Streams a watch; resolves when the server closes it, rejects on a transport error. */
  async watch<T>(path: string, query: RequestOptions["query"], onEvent: (event: WatchEvent<T>) => void, signal: AbortSignal, accept?: string): Promise<void> {
    const response = await this.send("GET", path, { query: { ...query, watch: true }, signal, accept });
    const code = response.statusCode ?? 0;
    if (code >= 400) throw apiError(code, await readAll(response), `WATCH ${path}`);
    let buffered = "";
    response.setEncoding("utf8");
    await new Promise<void>((resolve, reject) => {
      response.on("data", (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) onEvent(JSON.parse(line) as WatchEvent<T>);
        }
      });
      response.on("end", resolve);
      response.on("close", resolve);
      response.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
    });
  }

  /** Server-side apply as the operator's field manager; the object must carry apiVersion, kind and metadata. */
  apply<T extends KubeObject>(ref: ResourceRef, object: T): Promise<T> {
    return this.request<T>("PATCH", resourcePath(ref, object.metadata.namespace, object.metadata.name), {
      body: object,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: FIELD_MANAGER, force: true },
    });
  }

  private async send(method: string, path: string, options: RequestOptions): Promise<IncomingMessage> {
    const url = new URL(path, this.server);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const requestOptions: https.RequestOptions = { method, headers: {} };
    await this.access.apply(requestOptions);
    this.agent ??= this.keepAliveAgent(requestOptions);
    requestOptions.agent = this.agent;
    const body = options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    requestOptions.headers = {
      ...requestOptions.headers,
      Accept: options.accept ?? "application/json",
      "User-Agent": this.userAgent,
      ...(body !== undefined ? { "Content-Type": options.contentType ?? "application/json", "Content-Length": String(Buffer.byteLength(body)) } : {}),
    };
    const transport = url.protocol === "https:" ? https : http;
    const verb = options.query?.watch ? "WATCH" : method;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, { ...requestOptions, signal: options.signal }, (response) => {
        apiRequests.inc({ verb, code: String(response.statusCode ?? 0) });
        resolve(response);
      });
      req.on("error", (err) => {
        apiRequests.inc({ verb, code: "error" });
        reject(err);
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  private keepAliveAgent(options: https.RequestOptions): https.Agent | HttpAgent {
    if (this.server.protocol !== "https:") return new http.Agent({ keepAlive: true });
    return new https.Agent({
      keepAlive: true,
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      rejectUnauthorized: options.rejectUnauthorized,
      servername: options.servername,
    });
  }

  close(): void {
    this.agent?.destroy();
  }
}

function readAll(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    response.on("error", reject);
  });
}

function apiError(code: number, text: string, what: string): KubeApiError {
  try {
    const status = JSON.parse(text) as { reason?: string; message?: string };
    return new KubeApiError(code, status.reason ?? "Unknown", status.message ?? `${what}: HTTP ${code}`);
  } catch {
    return new KubeApiError(code, "Unknown", `${what}: HTTP ${code}: ${text.slice(0, 200)}`);
  }
}
