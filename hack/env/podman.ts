// Podman's Docker-compatible API on a socket in the environment's own folder, for
// testcontainers: storage, run state and configuration all live in that folder, so nothing of
// another run is seen and removing the folder removes every image and layer. Containers use the
// host's network (no bridge of their own beside the node's), are removed when the environment
// stops, and at exit whichever way it comes. Images cannot be pulled here: the MinIO image is
// built from the binary hack/tools.sh builds, saved once into the tool cache, and loaded.

import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { cleanupOnExit, ManagedProcess, sweepFolder, sweepOnExit } from "./processes.js";

const run = promisify(execFile);

export class Podman {
  readonly socket: string;
  private service: ManagedProcess | undefined;
  private forgetCleanup: (() => void) | undefined;
  private forgetSweep: (() => void) | undefined;

  constructor(
    private readonly dir: string,
    private readonly logDir: string,
  ) {
    this.socket = path.join(dir, "podman.sock");
  }

  /** The flags that put every podman command on this folder's storage and settings. */
  private get flags(): string[] {
    return [
      "--root",
      path.join(this.dir, "storage"),
      "--runroot",
      path.join(this.dir, "run"),
      "--cgroup-manager=cgroupfs",
      "--runtime=runc",
      "--events-backend=file",
    ];
  }

  private get env(): Record<string, string> {
    return { CONTAINERS_CONF: path.join(this.dir, "containers.conf"), CONTAINERS_STORAGE_CONF: path.join(this.dir, "storage.conf") };
  }

  /** The Docker-compatible endpoint, as testcontainers reads it from DOCKER_HOST. */
  get dockerHost(): string {
    return `unix://${this.socket}`;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    // These machines refuse podman's default ulimits; the containers' network is the host's.
    writeFileSync(
      path.join(this.dir, "containers.conf"),
      `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\nnetns = "host"\n\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\nevents_logger = "file"\ntmp_dir = "${path.join(this.dir, "tmp")}"\n`,
    );
    writeFileSync(
      path.join(this.dir, "storage.conf"),
      `[storage]\ndriver = "vfs"\ngraphroot = "${path.join(this.dir, "storage")}"\nrunroot = "${path.join(this.dir, "run")}"\n`,
    );
    const removeAll = ["podman", ...this.flags, "rm", "--all", "--force", "--time", "0"];
    this.forgetCleanup = cleanupOnExit(() => {
      try {
        execFileSync(removeAll[0] as string, removeAll.slice(1), { env: { ...process.env, ...this.env }, stdio: "ignore", timeout: 30_000 });
      } catch {
        // Nothing ran, or podman is gone: nothing to remove.
      }
    });
    // Killed outright, this process runs no hook: the supervisor kills conmon and the containers.
    this.forgetSweep = sweepOnExit(this.dir);
    this.service = new ManagedProcess("podman", "podman", [...this.flags, "system", "service", "--time=0", this.dockerHost], this.logDir, this.env);
    this.service.start();
    await this.service.waitUntil(async () => existsSync(this.socket) && (await this.podman("version", "--format", "{{.Server.Version}}")).length > 0, 30_000);
  }

  /** A podman command on this folder's storage; its stdout. */
  async podman(...args: string[]): Promise<string> {
    const { stdout } = await run("podman", [...this.flags, ...args], { env: { ...process.env, ...this.env }, maxBuffer: 16 << 20 });
    return stdout;
  }

  /** Names of the containers that exist now, running or not. */
  async containers(): Promise<string[]> {
    return (await this.podman("ps", "--all", "--format", "{{.Names}}")).split("\n").filter(Boolean);
  }

  /**
   * `localhost/gitsync-<name>:<version>`: a FROM scratch image holding one static binary as its
   * entrypoint, built once into `cache` as an archive and loaded from there on every run.
   */
  async binaryImage(name: string, binary: string, version: string, cache: string): Promise<string> {
    const image = `localhost/gitsync-${name}:${version}`;
    const archive = path.join(cache, `${name}-image-${version}.tar`);
    if (!existsSync(archive)) {
      const context = mkdtempSync(path.join(this.dir, `${name}-image-`));
      copyFileSync(binary, path.join(context, name));
      writeFileSync(path.join(context, "Containerfile"), `FROM scratch\nCOPY ${name} /${name}\nENTRYPOINT ["/${name}"]\n`);
      await this.podman("build", "--network=none", "--tag", image, context);
      await this.podman("save", "--output", `${archive}.tmp`, image);
      renameSync(`${archive}.tmp`, archive);
      rmSync(context, { recursive: true, force: true });
    } else {
      await this.podman("load", "--input", archive);
    }
    return image;
  }

  /** Every container removed, then the service stopped. */
  async stop(): Promise<void> {
    if (!this.service) return;
    await this.podman("rm", "--all", "--force", "--time", "0").catch(() => "");
    await this.service.stop();
    sweepFolder(this.dir);
    this.forgetCleanup?.();
    this.forgetSweep?.();
    this.service = undefined;
  }
}
