// An etcd v3 key space over the etcd3 client: reads with lease ids, a compare-and-put that
// never overwrites another publisher's key, leases kept alive in process, and a prefix watch
// that resumes from the last revision after a reconnect. Errors name the endpoints, never the
// password.

import { noop } from "cockatiel";
import type { Etcd3, Lease, Watcher } from "etcd3";
import { registerSecret } from "../util/redact.js";

export interface EtcdSettings {
  endpoints: string[];
  username?: string;
  password?: string;
  /** PEM: the CA that signed the server's certificate (https endpoints). */
  caCert?: string;
  /** PEM: a client certificate and key, where etcd asks for one. */
  cert?: string;
  key?: string;
}

export type EtcdErrorKind = "unavailable" | "auth" | "permission";

export class EtcdError extends Error {
  constructor(
    readonly kind: EtcdErrorKind,
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = "EtcdError";
  }
}

export interface StoredValue {
  key: string;
  value: string;
  /** The lease id as a decimal string, "0" when the key has none. */
  lease: string;
}

const CALL_TIMEOUT_MS = 5_000;

/** etcd3 and gRPC, loaded on first use: about 12 MiB of RSS that a process with no advert never holds. */
let etcd3: typeof import("etcd3") | undefined;

export class EtcdStore {
  private connection: Promise<Etcd3> | undefined;
  private readonly where: string;

  constructor(readonly settings: EtcdSettings) {
    registerSecret(settings.password);
    registerSecret(settings.key);
    this.where = `etcd at ${settings.endpoints.join(", ")}`;
  }

  private client(): Promise<Etcd3> {
    const settings = this.settings;
    const tls = settings.endpoints.some((e) => e.startsWith("https://"));
    return (this.connection ??= import("etcd3").then((module) => {
      etcd3 = module;
      return new module.Etcd3({
        hosts: settings.endpoints,
        ...(tls
          ? {
              credentials: {
                rootCertificate: Buffer.from(settings.caCert ?? ""),
                privateKey: settings.key ? Buffer.from(settings.key) : undefined,
                certChain: settings.cert ? Buffer.from(settings.cert) : undefined,
              },
            }
          : {}),
        ...(settings.username ? { auth: { username: settings.username, password: settings.password ?? "" } } : {}),
        defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
        // No retries inside a call: a reconcile's work queue retries with backoff, and three
        // retries of a five-second deadline would hold a worker (and a deletion) for twenty.
        faultHandling: { global: noop },
      });
    }));
  }

  async get(key: string): Promise<StoredValue | undefined> {
    const client = await this.client();
    const response = await this.guard("read", () => client.get(key).exec());
    const kv = response.kvs[0];
    return kv ? { key: kv.key.toString(), value: kv.value.toString(), lease: String(kv.lease) } : undefined;
  }

  /** Every key under the prefix, with its value and lease. */
  async list(prefix: string): Promise<StoredValue[]> {
    const client = await this.client();
    const response = await this.guard("list", () => client.getAll().prefix(prefix).exec());
    return response.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString(), lease: String(kv.lease) }));
  }

  /** The current revision of the key space (read through a key the caller may read), to watch from. */
  async revision(readableKey: string): Promise<string> {
    const client = await this.client();
    const response = await this.guard("read", () => client.get(readableKey).exec());
    return String(response.header.revision);
  }

  /** A new lease of ttl seconds; kept alive in this process until revoked or lost. */
  async lease(ttlSeconds: number, keepAlive = true): Promise<Lease> {
    const lease = (await this.client()).lease(ttlSeconds, { autoKeepAlive: keepAlive });
    // A lease that is never granted (etcd down) would otherwise report 'lost' unheard.
    lease.on("lost", () => undefined);
    await this.guard("grant a lease on", () => lease.grant());
    return lease;
  }

  /**
   * Puts the value under the lease unless the key changed since it was read: `expected` is the
   * lease the key had then, or undefined when it was absent. False when someone else won.
   */
  async putIfUnchanged(key: string, value: string, leaseId: string, expected: StoredValue | undefined): Promise<boolean> {
    const client = await this.client();
    const put = client.put(key).value(value).lease(leaseId);
    const result = await this.guard("write", () =>
      (expected ? client.if(key, "Lease", "==", expected.lease).and(key, "Value", "==", expected.value) : client.if(key, "Create", "==", 0)).then(put).commit(),
    );
    return result.succeeded;
  }

  async revoke(leaseId: string): Promise<void> {
    const client = await this.client();
    await this.guard("revoke a lease on", () => client.leaseClient.leaseRevoke({ ID: leaseId }));
  }

  /** Streams puts and deletes under the prefix from the given revision; etcd3 resumes after reconnects. */
  async watch(prefix: string, fromRevision: string | undefined, onEvent: (event: "put" | "delete", kv: StoredValue) => void): Promise<Watcher> {
    const builder = (await this.client()).watch().prefix(prefix);
    if (fromRevision) builder.startRevision(fromRevision);
    const watcher = await this.guard("watch", () => builder.create());
    const toValue = (kv: { key: Buffer; value: Buffer; lease: string | number }): StoredValue => ({
      key: kv.key.toString(),
      value: kv.value.toString(),
      lease: String(kv.lease),
    });
    watcher.on("put", (kv) => onEvent("put", toValue(kv)));
    watcher.on("delete", (kv) => onEvent("delete", toValue(kv)));
    return watcher;
  }

  close(): void {
    void this.connection?.then((client) => client.close());
  }

  private async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.translate(what, err);
    }
  }

  private translate(what: string, err: unknown): EtcdError {
    const detail = err instanceof Error ? err.message : String(err);
    const auth = etcd3 && (err instanceof etcd3.EtcdAuthenticationFailedError || err instanceof etcd3.GRPCUnauthenticatedError);
    if (auth || /authentication failed|invalid auth token/i.test(detail)) {
      return new EtcdError(
        "auth",
        `authentication to ${this.where} failed as user ${this.settings.username ?? "(none)"}: check username and password in the Secret`,
        err,
      );
    }
    if ((etcd3 && err instanceof etcd3.EtcdPermissionDeniedError) || /permission denied/i.test(detail)) {
      return new EtcdError(
        "permission",
        `${this.where} refused to ${what} (permission denied for user ${this.settings.username ?? "(none)"}): check the user's role`,
        err,
      );
    }
    return new EtcdError("unavailable", `failed to ${what} ${this.where}: ${detail}`, err);
  }
}

/** Settings from a Secret's keys (username, password, ca.crt, tls.crt, tls.key), registered for redaction. */
export function etcdSettingsFromSecret(endpoints: string[], data: Record<string, string> | undefined): EtcdSettings {
  return { endpoints, username: data?.username, password: data?.password, caCert: data?.["ca.crt"], cert: data?.["tls.crt"], key: data?.["tls.key"] };
}
