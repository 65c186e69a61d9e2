// The second etcd of the environment, where DatasetAdverts are published: separate from the
// API server's, with client TLS (a CA and a server certificate made here with openssl) and
// etcd auth. The operator's user has a role that may read and write only under the prefix;
// root administers. Stop and start keep the data, to test outages.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Etcd3 } from "etcd3";
import { serverCertificate } from "./certs.js";
import { BRIDGE_IP } from "./node.js";
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
      // The bridge's address too: with a node, pods reach this etcd through a forward there.
      serverCertificate(this.certDir, "server", { ips: ["127.0.0.1", BRIDGE_IP], dns: ["localhost"] });
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
}
