// Git over SSH for isomorphic-git, which speaks only smart HTTP: this is an HttpClient that
// runs git-upload-pack or git-receive-pack on the server over an SSH exec channel (ssh2).
//
// - The discovery GET opens the connection and the channel and reads the advertisement up
//   to its flush-pkt; for protocol v0 it is framed as HTTP's `# service=` reply, and v2's
//   capability advertisement (GIT_PROTOCOL=version=2, when the server accepts the variable)
//   is passed as is.
// - The POST that follows writes its body down the same channel, closes the writing side,
//   and streams the reply until the server closes the channel.
// - The server's host key is checked against known_hosts before any credential is sent; a
//   mismatch names the host and the key's fingerprint.
// - One connection per operation: release() ends it, and GitRepository calls it after every
//   network operation, on every path.

import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git";
import type { Client, ClientChannel, ConnectConfig } from "ssh2";
import { knownHostsName } from "../util/giturl.js";
import { onFirstUse } from "../util/lazy.js";
import { fingerprint, hostKeyAlgorithms, keysFor } from "./known-hosts.js";
import { collect } from "../util/node-http.js";
import { proxyName, tunnel } from "../util/proxy.js";
import { counted, countRequest, type TransportStats } from "./http.js";

export interface SshTarget {
  user: string;
  host: string;
  port: number;
  path: string;
}

export interface SshAuth {
  /** The private key (OpenSSH or PEM: ed25519, ecdsa or rsa). */
  identity: string;
  passphrase?: string;
  knownHosts: string;
  /** An HTTP proxy to tunnel through with CONNECT (util/proxy.ts chose it), credentials included. */
  proxy?: string;
}

export type SshErrorKind = "auth" | "host-key" | "not-found" | "network" | "config";

export class SshError extends Error {
  constructor(
    readonly kind: SshErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "SshError";
  }
}

/** ssh2 and its crypto: about 4 MiB of RSS that an operator reading no repository over SSH never holds. */
const ssh2 = onFirstUse<typeof import("ssh2")>("ssh2");

const READY_TIMEOUT_MS = 20_000;
const IDLE_TIMEOUT_MS = 120_000;
const FLUSH = Buffer.from("0000");

/** Checks the key and known_hosts up front: a configuration error names what is wrong, never the key. */
export function checkSshAuth(target: SshTarget, auth: SshAuth): void {
  const parsed = ssh2().utils.parseKey(auth.identity, auth.passphrase);
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(parsed.message);
    throw new SshError(
      "config",
      encrypted
        ? `the SSH identity for ${target.host} is encrypted: ${auth.passphrase ? "the password does not open it" : "set password to its passphrase"}`
        : `the SSH identity for ${target.host} is not a private key ssh can read (OpenSSH or PEM: ed25519, ecdsa or rsa)`,
    );
  }
  if (!auth.knownHosts.trim()) throw new SshError("config", `known_hosts is required for ${target.host}: host keys are always checked`);
  const name = knownHostsName(target.host, target.port);
  if (!keysFor(auth.knownHosts, name).some((k) => !k.revoked))
    throw new SshError("host-key", `${name} is not in known_hosts: add its host key (e.g. ssh-keyscan -p ${target.port} ${target.host})`);
}

export class SshHttpClient implements HttpClient {
  private session: Session | undefined;
  /** The connection of the current operation: its channels (ls-refs, then fetch) share it; release() ends it. */
  private conn: Promise<Client> | undefined;

  constructor(
    private readonly target: SshTarget,
    private readonly auth: SshAuth,
    private readonly stats?: TransportStats,
  ) {
    checkSshAuth(target, auth);
  }

  async request(req: GitHttpRequest): Promise<GitHttpResponse> {
    const url = new URL(req.url);
    const discovery = url.pathname.endsWith("/info/refs");
    const service = discovery ? url.searchParams.get("service") : url.pathname.split("/").pop();
    if (service !== "git-upload-pack" && service !== "git-receive-pack") throw new SshError("config", `${this.where}: no git service in ${url.pathname}`);
    const v2 = /version=2/.test(headerValue(req.headers, "git-protocol") ?? "");
    if (discovery) {
      this.session?.close();
      this.session = undefined;
      if (this.stats && service === "git-upload-pack") this.stats.refListings += 1;
      this.session = await this.open(service, v2);
      const advert = await this.session.readAdvertisement();
      const body = advert.subarray(0, 14).toString().includes("version 2") ? advert : Buffer.concat([pktLine(`# service=${service}\n`), FLUSH, advert]);
      return response(req, `application/x-${service}-advertisement`, once(body));
    }
    const request = req.body ? await collect(req.body) : Buffer.alloc(0);
    if (this.stats) countRequest(this.stats, service, request);
    let session = this.session?.service === service ? this.session : undefined;
    this.session = undefined;
    if (!session) {
      session = await this.open(service, v2);
      await session.readAdvertisement();
    }
    return response(req, `application/x-${service}-result`, counted(session.exchange(request), this.stats, service === "git-upload-pack"));
  }

  /** Ends the connection of the current operation, if any. */
  release(): void {
    this.session?.close();
    this.session = undefined;
    const conn = this.conn;
    this.conn = undefined;
    conn?.then((c) => c.end()).catch(() => undefined);
  }

  private get address(): string {
    const host = this.target.host.includes(":") ? `[${this.target.host}]` : this.target.host;
    return `ssh://${host}${this.target.port === 22 ? "" : `:${this.target.port}`}`;
  }

  /** The server as errors name it, with the proxy it is reached through. */
  private get where(): string {
    return `${this.address}${this.auth.proxy ? ` (via proxy ${proxyName(this.auth.proxy)})` : ""}`;
  }

  private async open(service: string, v2: boolean): Promise<Session> {
    this.conn ??= this.connect();
    const pending = this.conn;
    const conn = await pending.catch((err: unknown) => {
      if (this.conn === pending) this.conn = undefined;
      throw err;
    });
    const command = `${service} '${this.target.path.replace(/'/g, "'\\''")}'`;
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      conn.exec(command, v2 ? { env: { GIT_PROTOCOL: "version=2" } } : {}, (err, ch) => (err ? reject(err) : resolve(ch))),
    ).catch((err: unknown) => {
      this.release();
      throw new SshError("network", `${this.where}: cannot run ${service}: ${(err as Error).message}`, { cause: err });
    });
    return new Session(service, conn, channel, `${this.address}${this.target.path.startsWith("/") ? "" : "/"}${this.target.path}`);
  }

  private async connect(): Promise<Client> {
    const sock = this.auth.proxy
      ? await tunnel(this.auth.proxy, this.target.host, this.target.port, READY_TIMEOUT_MS).catch((err: unknown) => {
          // The tunnel's error names the proxy already.
          throw new SshError("network", `${this.address}: ${(err as Error).message}`, { cause: err });
        })
      : undefined;
    const name = knownHostsName(this.target.host, this.target.port);
    const known = keysFor(this.auth.knownHosts, name);
    let offered: Buffer | undefined;
    const config: ConnectConfig = {
      host: this.target.host,
      port: this.target.port,
      username: this.target.user,
      privateKey: this.auth.identity,
      passphrase: this.auth.passphrase,
      readyTimeout: READY_TIMEOUT_MS,
      ...(sock ? { sock } : {}),
      algorithms: { serverHostKey: hostKeyAlgorithms(known) as NonNullable<ConnectConfig["algorithms"]>["serverHostKey"] },
      hostVerifier: (key: Buffer) => {
        offered = key;
        return known.some((k) => !k.revoked && k.key.equals(key)) && !known.some((k) => k.revoked && k.key.equals(key));
      },
    };
    return new Promise((resolve, reject) => {
      const conn = new (ssh2().Client)();
      conn.once("ready", () => resolve(conn));
      conn.once("close", () => {
        // Closed before the handshake, and ssh2 said nothing else: the connect must not wait forever.
        reject(new SshError("network", `${this.where}: the connection closed before the SSH handshake`));
        if (this.conn) void this.conn.then((c) => c === conn && (this.conn = undefined)).catch(() => undefined);
      });
      // For the connection's whole life, not once: ssh2 can emit a second error (a lost socket
      // after a failed handshake), and one with no listener would take the process down. The first
      // fails the connect; a later one on an idle connection ends it (a session has its own listener).
      conn.on("error", (err: Error & { level?: string }) => {
        conn.end();
        reject(this.connectError(err, name, offered, known.length));
      });
      conn.connect(config);
    });
  }

  private connectError(err: Error & { level?: string }, name: string, offered: Buffer | undefined, knownCount: number): SshError {
    if (offered && /verification failed|Host denied/i.test(err.message)) {
      return new SshError(
        "host-key",
        `the host key of ${name} (${fingerprint(offered)}) does not match ${knownCount === 1 ? "the key" : `any of the ${knownCount} keys`} known_hosts holds for it; refused before any credential was sent`,
        { cause: err },
      );
    }
    if (err.level === "client-authentication")
      return new SshError("auth", `${this.where}: the server refused the SSH key (check the deploy key and its access)`, { cause: err });
    if (/handshake/i.test(err.message) && /timed out/i.test(err.message))
      return new SshError("network", `${this.where}: timed out after ${READY_TIMEOUT_MS / 1000}s waiting for the SSH handshake`, { cause: err });
    if (/no matching/i.test(err.message))
      return new SshError("host-key", `${name} offers no host key of the types known_hosts holds for it (${err.message})`, { cause: err });
    const code = (err as { code?: string }).code;
    return new SshError("network", `${this.where}: ${code && !err.message.includes(code) ? `${code} ` : ""}${err.message}`, { cause: err });
  }
}

/** One exec channel: the bytes it sent are queued until read; the connection ends with the channel. */
class Session {
  private readonly chunks: Buffer[] = [];
  private buffered = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private closed = false;
  private failure: Error | undefined;
  private stderr = "";
  private exitCode: number | undefined;
  private idle: NodeJS.Timeout | undefined;

  constructor(
    readonly service: string,
    private readonly conn: Client,
    private readonly channel: ClientChannel,
    private readonly where: string,
  ) {
    channel.on("data", (chunk: Buffer) => this.push(chunk));
    channel.stderr.on("data", (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)));
    channel.on("exit", (code: number | null) => (this.exitCode = code ?? undefined));
    channel.on("close", () => this.finish());
    const onError = (err: Error): void => this.finish(new SshError("network", `${where}: ${err.message}`, { cause: err }));
    const onClose = (): void => this.finish(new SshError("network", `${where}: the connection closed`));
    conn.on("error", onError);
    conn.on("close", onClose);
    channel.once("close", () => (conn.off("error", onError), conn.off("close", onClose)));
    this.touch();
  }

  /** The advertisement: pkt-lines up to and including the first flush-pkt. */
  async readAdvertisement(): Promise<Buffer> {
    for (;;) {
      const end = flushEnd(this.buffered);
      if (end >= 0) {
        const advert = this.buffered.subarray(0, end);
        this.buffered = this.buffered.subarray(end);
        return advert;
      }
      if (!(await this.more())) throw this.endedEarly("before it advertised its refs");
    }
  }

  /** Writes the request, closes the writing side, and yields the reply until the server closes the channel. */
  async *exchange(request: Buffer): AsyncIterableIterator<Uint8Array> {
    try {
      this.channel.end(request);
      if (this.buffered.length) yield this.take();
      while (await this.more()) yield this.take();
      if (this.exitCode && this.exitCode !== 0) throw this.endedEarly(`with exit code ${this.exitCode}`);
    } finally {
      this.close();
    }
  }

  /** Closes the channel; the connection is the client's (release() ends it). */
  close(): void {
    clearTimeout(this.idle);
    if (!this.closed) this.channel.close();
    this.closed = true;
    this.wake?.();
  }

  private take(): Buffer {
    const out = this.buffered;
    this.buffered = Buffer.alloc(0);
    return out;
  }

  /** Waits for more bytes; false when the channel has closed and nothing is left. */
  private async more(): Promise<boolean> {
    while (!this.chunks.length && !this.closed && !this.failure) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
    if (!this.chunks.length) return false;
    this.buffered = Buffer.concat([this.buffered, ...this.chunks.splice(0)]);
    return true;
  }

  private push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.touch();
    this.wake?.();
  }

  private finish(failure?: Error): void {
    clearTimeout(this.idle);
    if (failure && !this.closed) this.failure ??= failure;
    this.closed = true;
    this.wake?.();
  }

  private touch(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => {
      this.finish(new SshError("network", `${this.where}: no data for ${IDLE_TIMEOUT_MS / 1000}s; gave up`));
      this.conn.end();
    }, IDLE_TIMEOUT_MS);
    this.idle.unref();
  }

  private endedEarly(when: string): SshError {
    const detail = this.stderr.trim().split("\n").pop() ?? "";
    const missing = /does not appear to be a git repository|not found|No such file/i.test(detail);
    return new SshError(missing ? "not-found" : "network", `${this.where}: ${this.service} ended ${when}${detail ? `: ${detail}` : ""}`);
  }
}

/** Where the first flush-pkt ends, or -1 when the buffer holds none yet. */
function flushEnd(data: Buffer): number {
  let at = 0;
  while (at + 4 <= data.length) {
    const length = parseInt(data.subarray(at, at + 4).toString("ascii"), 16);
    if (Number.isNaN(length)) throw new SshError("network", `not a git pkt-line: ${JSON.stringify(data.subarray(at, at + 4).toString("latin1"))}`);
    if (length === 0) return at + 4;
    if (length < 4) {
      at += 4;
      continue;
    }
    if (at + length > data.length) return -1;
    at += length;
  }
  return -1;
}

function pktLine(text: string): Buffer {
  const body = Buffer.from(text);
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, "0")), body]);
}

function headerValue(headers: Record<string, string> | undefined, name: string): string | undefined {
  return Object.entries(headers ?? {}).find(([key]) => key.toLowerCase() === name)?.[1];
}

function response(req: GitHttpRequest, contentType: string, body: AsyncIterableIterator<Uint8Array>): GitHttpResponse {
  return { url: req.url, method: req.method, statusCode: 200, statusMessage: "OK", headers: { "content-type": contentType }, body };
}

async function* once(data: Uint8Array): AsyncIterableIterator<Uint8Array> {
  yield await Promise.resolve(data);
}
