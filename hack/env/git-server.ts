// A git smart-HTTP server for tests and the demo: Node http in front of `git http-backend`
// (the CGI program that ships with git), with HTTP basic auth so that credentials are
// really checked. It records each request so tests can see what a client transferred.

import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { clientCertificate, serverCertificate, type ServerCert } from "./certs.js";

export interface GitRequest {
  method: string;
  path: string;
  service: string | undefined;
  /** Protocol v2 command of an upload-pack POST ("ls-refs" or "fetch"); "fetch" for a v1 negotiation. */
  command: string | undefined;
  status: number;
  user: string | undefined;
}

/** A fault the server plays, for the fault matrix: every request answered 500, or each held first. */
export type GitFault = { kind: "none" } | { kind: "error"; status: number } | { kind: "slow"; delayMs: number; only?: RegExp };

export class GitServer {
  readonly requests: GitRequest[] = [];
  /** What the server does to each request; "none" serves it. */
  fault: GitFault = { kind: "none" };
  /** The paths of the requests a slow fault is holding now. */
  readonly held: string[] = [];
  private server: http.Server | undefined;
  private port = 0;
  /** The HTTPS listener that requires a client certificate signed by its CA; only after startMutualTls(). */
  private tlsServer: https.Server | undefined;
  private readonly backend = path.join(execFileSync("git", ["--exec-path"], { encoding: "utf8" }).trim(), "git-http-backend");

  constructor(
    readonly root: string,
    readonly username: string,
    /** Changed by a test to revoke the credentials every client holds, and restored after. */
    public password: string,
  ) {
    mkdirSync(root, { recursive: true });
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The HTTP URL of a repository, without credentials. */
  url(repo: string): string {
    return `${this.baseUrl}/${repo}.git`;
  }

  async start(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(port, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /**
   * A second listener, over HTTPS, that refuses any client without a certificate signed by its
   * own CA (mutual TLS). Returns its base URL, the CA to trust, and a client certificate.
   */
  async startMutualTls(certDir: string): Promise<{ baseUrl: string; ca: string; client: ServerCert }> {
    const server = serverCertificate(certDir, "git-server", { ips: ["127.0.0.1"], dns: ["localhost"] });
    const client = clientCertificate(certDir, "git-client");
    this.tlsServer = https.createServer(
      { cert: readFileSync(server.cert), key: readFileSync(server.key), ca: readFileSync(server.ca), requestCert: true, rejectUnauthorized: true },
      (req, res) => this.handle(req, res),
    );
    await new Promise<void>((resolve) => this.tlsServer?.listen(0, "127.0.0.1", resolve));
    const { port } = this.tlsServer.address() as AddressInfo;
    return { baseUrl: `https://127.0.0.1:${port}`, ca: server.ca, client };
  }

  async stopMutualTls(): Promise<void> {
    const server = this.tlsServer;
    this.tlsServer = undefined;
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  async stop(): Promise<void> {
    await this.stopMutualTls();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Creates a bare repository with branch main, seeded with the given files in one commit. */
  createRepo(name: string, files: Record<string, string> = {}, message = "Initial commit"): string {
    const dir = path.join(this.root, `${name}.git`);
    rmSync(dir, { recursive: true, force: true });
    execFileSync("git", ["init", "--quiet", "--bare", "--initial-branch=main", dir]);
    execFileSync("git", ["-C", dir, "config", "http.receivepack", "true"]);
    if (Object.keys(files).length > 0) this.commitFiles(name, files, message);
    return this.url(name);
  }

  /** Commits files straight into the bare repository with native git (as another user would push). */
  commitFiles(name: string, files: Record<string, string | null>, message: string): string {
    const dir = path.join(this.root, `${name}.git`);
    const work = mkdtempSync(path.join(this.root, ".work-"));
    const git = (...args: string[]): string =>
      execFileSync("git", args, {
        cwd: work,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: "Test",
          GIT_AUTHOR_EMAIL: "test@example.com",
          GIT_COMMITTER_NAME: "Test",
          GIT_COMMITTER_EMAIL: "test@example.com",
        },
      }).trim();
    try {
      git("init", "--quiet", "--initial-branch=main");
      git("remote", "add", "origin", dir);
      const hasMain = execFileSync("git", ["-C", dir, "branch", "--list", "main"], { encoding: "utf8" }).trim() !== "";
      if (hasMain) git("pull", "--quiet", "origin", "main");
      for (const [file, content] of Object.entries(files)) {
        const target = path.join(work, file);
        if (content === null) rmSync(target, { force: true });
        else {
          mkdirSync(path.dirname(target), { recursive: true });
          writeFileSync(target, content);
        }
      }
      git("add", "-A");
      git("commit", "--quiet", "--allow-empty", "-m", message);
      git("push", "--quiet", "origin", "HEAD:main");
      return git("rev-parse", "HEAD");
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /** Runs native git in a bare repository (e.g. to read what the operator pushed). */
  git(name: string, ...args: string[]): string {
    return execFileSync("git", ["-C", path.join(this.root, `${name}.git`), ...args], { encoding: "utf8" }).trim();
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const fault = this.fault;
    const requestPath = new URL(req.url ?? "/", "http://localhost").pathname;
    if (fault.kind === "error") {
      req.resume();
      this.requests.push({ method: req.method ?? "GET", path: requestPath, service: undefined, command: undefined, status: fault.status, user: undefined });
      res.writeHead(fault.status, { "Content-Type": "text/plain" });
      res.end("injected fault\n");
      return;
    }
    if (fault.kind === "slow" && (!fault.only || fault.only.test(requestPath))) {
      // The whole request is read first, then held: a client that goes away meanwhile still has it
      // served (as a real server finishes a push whose client died); one cut short is dropped.
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.once("end", () => {
        this.held.push(requestPath);
        setTimeout(() => {
          this.held.splice(this.held.indexOf(requestPath), 1);
          this.serve(req, res, Buffer.concat(chunks));
        }, fault.delayMs);
      });
      return;
    }
    this.serve(req, res);
  }

  /** Serves a request through git http-backend; `body` when it was read already (held by a slow fault). */
  private serve(req: http.IncomingMessage, res: http.ServerResponse, body?: Buffer): void {
    const url = new URL(req.url ?? "/", "http://localhost");
    const service = url.searchParams.get("service") ?? (req.method === "POST" ? path.basename(url.pathname) : undefined);
    let command: string | undefined;
    const sniff = (chunk: Buffer): void => void (command = /command=([a-z-]+)/.exec(chunk.subarray(0, 64).toString("latin1"))?.[1] ?? "fetch");
    if (req.method === "POST" && service === "git-upload-pack") {
      if (body) sniff(body);
      else req.once("data", sniff);
    }
    const record = (status: number, user?: string): void => {
      this.requests.push({ method: req.method ?? "GET", path: url.pathname, service, command, status, user });
    };
    const user = this.authenticate(req.headers.authorization);
    if (!user) {
      record(401);
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="gitsync-test"' });
      res.end("authentication required\n");
      return;
    }
    const cgi = spawn(this.backend, [], {
      env: {
        GIT_PROJECT_ROOT: this.root,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? "GET",
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        REMOTE_USER: user,
        REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
        GIT_PROTOCOL: String(req.headers["git-protocol"] ?? ""),
        HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"] ?? ""),
        PATH: process.env.PATH ?? "/usr/bin:/bin",
      },
    });
    // The backend may answer and exit before it reads the whole request (a repository gone, a
    // bad request): writing the rest then fails with EPIPE, which is no error of the server's.
    cgi.stdin.on("error", () => undefined);
    if (body) cgi.stdin.end(body);
    else req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersSent = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersSent) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, end).toString("utf8").split("\r\n")) {
        const colon = line.indexOf(":");
        const key = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (key.toLowerCase() === "status") status = Number(value.split(" ")[0]);
        else headers[key] = value;
      }
      record(status, user);
      res.writeHead(status, headers);
      headersSent = true;
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on("end", () => res.end());
    cgi.on("error", () => {
      if (!headersSent) res.writeHead(500);
      res.end();
    });
  }

  private authenticate(header: string | undefined): string | undefined {
    if (!header?.startsWith("Basic ")) return undefined;
    const [user, ...rest] = Buffer.from(header.slice(6), "base64").toString("utf8").split(":");
    return user === this.username && rest.join(":") === this.password ? user : undefined;
  }
}
