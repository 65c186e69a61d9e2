// tinyproxy, Debian's small HTTP proxy, as a plain process on 127.0.0.1: plain HTTP requests
// in absolute form and CONNECT tunnels (HTTPS, SSH), behind basic auth so that the proxy's
// credentials are really checked. Its log, one line per request, is what the proxy tests read
// to see that a connection went through it.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { freePort, ManagedProcess, portOpen } from "./processes.js";

export const TINYPROXY = "/usr/bin/tinyproxy";

export class HttpProxy {
  port = 0;
  readonly username = "proxy-user";
  readonly password: string;
  private process: ManagedProcess | undefined;

  constructor(
    private readonly dir: string,
    private readonly logDir: string,
    password: string,
  ) {
    this.password = password;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.port = await freePort();
    const config = path.join(this.dir, "tinyproxy.conf");
    // No LogFile and no Syslog: tinyproxy logs to its standard output, which the process log keeps.
    writeFileSync(
      config,
      [
        "User nobody",
        "Group nogroup",
        `Port ${this.port}`,
        "Listen 127.0.0.1",
        "Timeout 120",
        "LogLevel Connect",
        "MaxClients 50",
        "Allow 127.0.0.1",
        `BasicAuth ${this.username} ${this.password}`,
        "DisableViaHeader Yes",
        "",
      ].join("\n"),
    );
    this.process = new ManagedProcess("tinyproxy", TINYPROXY, ["-d", "-c", config], this.logDir);
    this.process.start();
    await this.process.waitUntil(() => portOpen(this.port), 20_000);
  }

  async stop(): Promise<void> {
    await this.process?.stop();
  }

  /** The proxy's URL with its credentials, as HTTPS_PROXY names it. */
  get url(): string {
    return `http://${this.username}:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}`;
  }

  /** The proxy's address without credentials, as a proxySecretRef's address names it. */
  get address(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The lines tinyproxy logged for requests to host:port (a CONNECT, or a plain request's URL). */
  requestsTo(hostPort: string): string[] {
    let log: string;
    try {
      log = readFileSync(this.process?.logFile ?? "", "utf8");
    } catch {
      return [];
    }
    return log.split("\n").filter((line) => /Request|CONNECT/i.test(line) && line.includes(hostPort));
  }

  tail(lines = 30): string {
    return this.process?.tail(lines) ?? "(not started)";
  }
}
