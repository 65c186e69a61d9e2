// The second etcd of the environment, where DatasetAdverts are published: separate from the
// API server's, with client TLS (a CA and a server certificate made here with openssl) and
// etcd auth. The operator's user has a role that may read and write only under the prefix;
// root administers. Stop and start keep the data, to test outages.

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Etcd3 } from "etcd3";
import { freePort, ManagedProcess } from "./processes.js";

export interface EtcdUser {
  username: string;
  password: string;
}

export class DatasetEtcd {
  endpoint = "";
  readonly prefix = "/gitsync/datasets";
  readonly root: EtcdUser = { username: "root", password: randomBytes(12).toString("hex") };
  /** The operator's user: read and write under the prefix only. */
  readonly operator: EtcdUser = { username: "gitsync-operator", password: randomBytes(12).toString("hex") };
  process: ManagedProcess | undefined;
  private readonly certDir: string;

  constructor(
    private readonly dir: string,
    private readonly binary: string,
    private readonly logDir: string,
    private readonly port?: number,
  ) {
    this.certDir = path.join(dir, "certs");
  }

  /** The CA that signed the server's certificate (PEM), for clients' ca.crt. */
  get caCert(): string {
    return readFileSync(path.join(this.certDir, "ca.crt"), "utf8");
  }

  get caFile(): string {
    return path.join(this.certDir, "ca.crt");
  }

  async start(): Promise<void> {
    const firstStart = !this.endpoint;
    if (firstStart) {
      this.makeCertificates();
      this.endpoint = `https://127.0.0.1:${this.port ?? (await freePort())}`;
    }
    const peer = await freePort();
    this.process = new ManagedProcess(
      "etcd-datasets",
      this.binary,
      [
        "--name=gitsync-datasets",
        `--data-dir=${path.join(this.dir, "data")}`,
        `--listen-client-urls=${this.endpoint}`,
        `--advertise-client-urls=${this.endpoint}`,
        `--cert-file=${path.join(this.certDir, "server.crt")}`,
        `--key-file=${path.join(this.certDir, "server.key")}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=gitsync-datasets=http://127.0.0.1:${peer}`,
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      this.logDir,
    );
    this.process.start();
    const client = this.client(firstStart ? undefined : this.root);
    try {
      await this.process.waitUntil(async () => (await client.get("health").exec(), true), 30_000);
      if (firstStart) await this.enableAuth(client);
    } finally {
      client.close();
    }
  }

  async stop(): Promise<void> {
    await this.process?.stop();
  }

  /** A client as the given user (none: before auth is enabled). */
  client(user?: EtcdUser): Etcd3 {
    return new Etcd3({ hosts: [this.endpoint], credentials: { rootCertificate: Buffer.from(this.caCert) }, ...(user ? { auth: user } : {}) });
  }

  private async enableAuth(client: Etcd3): Promise<void> {
    await client.user(this.root.username).create(this.root.password);
    await client.user(this.root.username).addRole("root");
    const role = await client.role("gitsync-datasets").create();
    await role.grant({ permission: "Readwrite", range: client.range({ prefix: `${this.prefix}/` }) });
    await client.user(this.operator.username).create(this.operator.password);
    await client.user(this.operator.username).addRole("gitsync-datasets");
    await client.auth.authEnable();
  }

  /** A CA and a server certificate for 127.0.0.1, valid for a day. */
  private makeCertificates(): void {
    mkdirSync(this.certDir, { recursive: true });
    const at = (name: string): string => path.join(this.certDir, name);
    const openssl = (args: string[]): void => void execFileSync("openssl", args, { stdio: "ignore" });
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=gitsync-datasets-ca", "-keyout", at("ca.key"), "-out", at("ca.crt")]);
    openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", at("server.key"), "-out", at("server.csr")]);
    writeFileSync(at("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    openssl([
      "x509",
      "-req",
      "-in",
      at("server.csr"),
      "-CA",
      at("ca.crt"),
      "-CAkey",
      at("ca.key"),
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      at("server.ext"),
      "-out",
      at("server.crt"),
    ]);
  }
}
