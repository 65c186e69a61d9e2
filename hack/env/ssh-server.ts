// OpenSSH's sshd as a plain process on 127.0.0.1, serving the git server's repositories over
// SSH: its own config, host key, authorized key and port, in the environment's folder. The
// client keys (a plain one and one behind a passphrase) and known_hosts are made here too.

import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, ManagedProcess, portOpen } from "./processes.js";

export const SSHD = "/usr/sbin/sshd";
/** A second loopback address where sshd also listens on port 22, so that scp-like URLs (which name no port) reach it. */
export const SCP_HOST = "127.0.0.2";

export class SshServer {
  port = 0;
  /** The user git runs as over SSH: the one running the environment (root on these machines). */
  readonly user = os.userInfo().username;
  readonly passphrase = "correct horse battery";
  private process: ManagedProcess | undefined;

  constructor(
    private readonly dir: string,
    /** The folder the git server's bare repositories live in. */
    private readonly gitRoot: string,
    private readonly logDir: string,
  ) {}

  async start(port?: number): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    if (await portOpen(22, SCP_HOST))
      throw new Error(`${SCP_HOST}:22 is taken (another sshd listening on every address?): the SSH server serves scp-like URLs there`);
    // sshd refuses to start without its privilege-separation folder.
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    this.port = port ?? (await freePort());
    for (const [name, passphrase] of [
      ["host_ed25519", ""],
      ["client_ed25519", ""],
      ["client_encrypted", this.passphrase],
      ["stranger_ed25519", ""],
    ] as const) {
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", path.join(this.dir, name)]);
    }
    const authorized = ["client_ed25519", "client_encrypted"].map((k) => readFileSync(path.join(this.dir, `${k}.pub`), "utf8").trim());
    writeFileSync(path.join(this.dir, "authorized_keys"), `${authorized.join("\n")}\n`, { mode: 0o600 });
    writeFileSync(path.join(this.dir, "sshd_config"), this.config());
    this.process = new ManagedProcess("sshd", SSHD, ["-D", "-e", "-f", path.join(this.dir, "sshd_config")], this.logDir);
    this.process.start();
    await this.process.waitUntil(async () => (await portOpen(this.port)) && (await portOpen(22, SCP_HOST)), 20_000);
  }

  async stop(): Promise<void> {
    await this.process?.stop();
  }

  /** The ssh:// URL of a repository of the git server. */
  url(repo: string): string {
    return `ssh://${this.user}@127.0.0.1:${this.port}${this.gitRoot}/${repo}.git`;
  }

  /** The scp-like URL of a repository (port 22 of the second loopback address). */
  scpUrl(repo: string): string {
    return `${this.user}@${SCP_HOST}:${this.gitRoot}/${repo}.git`;
  }

  /** known_hosts for this server: its host key under [127.0.0.1]:port and under the scp host. */
  get knownHosts(): string {
    const [type, key] = readFileSync(path.join(this.dir, "host_ed25519.pub"), "utf8").trim().split(/\s+/);
    return `[127.0.0.1]:${this.port} ${type} ${key}\n${SCP_HOST} ${type} ${key}\n`;
  }

  /** known_hosts naming this server as clients elsewhere reach it (e.g. pods, through a forward on the bridge). */
  knownHostsAt(host: string, port: number): string {
    const [type, key] = readFileSync(path.join(this.dir, "host_ed25519.pub"), "utf8").trim().split(/\s+/);
    return `${port === 22 ? host : `[${host}]:${port}`} ${type} ${key}\n`;
  }

  /** A known_hosts line for this server with another key: what a changed host key looks like to a client. */
  get wrongKnownHosts(): string {
    const [type, key] = readFileSync(path.join(this.dir, "stranger_ed25519.pub"), "utf8").trim().split(/\s+/);
    return `[127.0.0.1]:${this.port} ${type} ${key}\n`;
  }

  /** A private key the server accepts; `encrypted` is behind `passphrase`. */
  identity(which: "plain" | "encrypted" | "stranger" = "plain"): string {
    const file = { plain: "client_ed25519", encrypted: "client_encrypted", stranger: "stranger_ed25519" }[which];
    return readFileSync(path.join(this.dir, file), "utf8");
  }

  identityFile(which: "plain" | "encrypted" | "stranger" = "plain"): string {
    return path.join(this.dir, { plain: "client_ed25519", encrypted: "client_encrypted", stranger: "stranger_ed25519" }[which]);
  }

  private config(): string {
    return [
      `ListenAddress 127.0.0.1:${this.port}`,
      `ListenAddress ${SCP_HOST}:22`,
      `HostKey ${path.join(this.dir, "host_ed25519")}`,
      `PidFile ${path.join(this.dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${path.join(this.dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      // The keys live in a temp folder whose owner and modes sshd would otherwise judge.
      "StrictModes no",
      // git sends GIT_PROTOCOL=version=2 through the environment.
      "AcceptEnv GIT_PROTOCOL",
      "LogLevel VERBOSE",
      "",
    ].join("\n");
  }
}
