// Child processes of the local environment: started with a log file each, waited on until
// ready, and killed when the environment stops, the test run fails or the user hits Ctrl-C.

import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import path from "node:path";

const live = new Set<ChildProcess>();
const folders = new Set<string>();
const cleanups = new Set<() => void>();
let exitHookInstalled = false;

/** Removes the folder when the process exits, whichever way (Ctrl-C included). */
export function removeOnExit(folder: string): void {
  installExitHook();
  folders.add(folder);
}

/** Runs a synchronous cleanup at exit, after every child is killed (what a node leaves behind). */
export function cleanupOnExit(cleanup: () => void): () => void {
  installExitHook();
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** The folder is gone already: nothing to remove at exit. */
export function forgetOnExit(folder: string): void {
  folders.delete(folder);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: a plain kill of every child still alive.
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
    for (const cleanup of cleanups) cleanup();
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      for (const child of live) child.kill("SIGKILL");
      process.exit(130);
    });
  }
}

/** Ports this process has handed out: servers started side by side must never get the same one. */
const handedOut = new Set<number>();

/** A free TCP port on 127.0.0.1, never one handed out before in this process. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

export class ManagedProcess {
  private child: ChildProcess | undefined;
  /** Why the process could not be started at all (e.g. ENOENT: not installed). */
  private spawnError: Error | undefined;
  readonly logFile: string;

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    logDir: string,
    private readonly env: Record<string, string> = {},
  ) {
    this.logFile = path.join(logDir, `${name}.log`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    installExitHook();
    const log = createWriteStream(this.logFile, { flags: "a" });
    const child = spawn(this.command, this.args, { env: { ...process.env, ...this.env }, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    child.on("exit", () => live.delete(child));
    child.once("error", (err) => {
      live.delete(child);
      this.spawnError = err;
    });
    live.add(child);
    this.child = child;
  }

  /** Polls `ready` until it resolves true; fails with the log's tail if the process dies or time runs out. */
  async waitUntil(ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.spawnError) {
        const missing = (this.spawnError as NodeJS.ErrnoException).code === "ENOENT";
        throw new Error(
          `${this.name} could not be started: ${this.spawnError.message}${missing ? " (run hack/deps.sh, or make test or make demo, which do)" : ""}`,
        );
      }
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) {
        throw new Error(`${this.name} exited with code ${this.child.exitCode}:\n${this.tail()}`);
      }
      if (await ready().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.name} was not ready after ${timeoutMs} ms:\n${this.tail()}`);
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  tail(lines = 30): string {
    try {
      return readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}

/** Paths of the Go-built servers, built once per machine by hack/tools.sh. */
export function toolPaths(): Record<string, string> {
  const script = path.resolve(import.meta.dirname, "../../../hack/tools.sh");
  const out = execFileSync("bash", [script], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((line) => line.split("=", 2) as [string, string]),
  );
}
