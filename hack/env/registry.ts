// CNCF Distribution's registry (built from its Go module by hack/tools.sh) as a plain process on
// 127.0.0.1, with a filesystem store in the environment's folder: the OCI registry the chart is
// pushed to with `helm push` and installed from with `helm install oci://...`.

import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stringify } from "yaml";
import { freePort, ManagedProcess, portOpen } from "./processes.js";

export class OciRegistry {
  port = 0;
  private process: ManagedProcess | undefined;

  constructor(
    private readonly binary: string,
    private readonly dir: string,
    private readonly logDir: string,
  ) {}

  async start(): Promise<void> {
    mkdirSync(path.join(this.dir, "store"), { recursive: true });
    this.port = await freePort();
    const config = path.join(this.dir, "config.yml");
    writeFileSync(
      config,
      stringify({
        version: 0.1,
        log: { level: "info" },
        storage: { filesystem: { rootdirectory: path.join(this.dir, "store") }, delete: { enabled: true } },
        http: { addr: `127.0.0.1:${this.port}` },
      }),
    );
    this.process = new ManagedProcess("registry", this.binary, ["serve", config], this.logDir, { OTEL_TRACES_EXPORTER: "none" });
    this.process.start();
    await this.process.waitUntil(() => portOpen(this.port), 30_000);
  }

  async stop(): Promise<void> {
    await this.process?.stop();
  }

  /** host:port, as an oci:// reference names the registry. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }
}
