// Child processes of the local environment: started with a log file each, waited on until
// ready, and killed when the environment stops, the test run fails or the user hits Ctrl-C.

import { spawn, spawnSync, execFileSync, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Writable } from "node:stream";
import type { NodeCleanup } from "./node.js";
import type { SupervisedState } from "./supervisor.js";

const live = new Set<ChildProcess>();
const folders = new Set<string>();
const cleanups = new Set<() => void>();
let exitHookInstalled = false;

/** Removes the folder when the process exits, whichever way (Ctrl-C included; SIGKILL through the supervisor). */
export function removeOnExit(folder: string): void {
  installExitHook();
  folders.add(folder);
  supervised.folders.add(folder);
  supervise();
}

/**
 * Runs a synchronous cleanup at exit, after every child is killed (what a node leaves behind).
 * `node` is the same cleanup as data, for the supervisor to run when this process is killed outright.
 */
export function cleanupOnExit(cleanup: () => void, data?: { node: NodeCleanup }): () => void {
  installExitHook();
  cleanups.add(cleanup);
  if (data) supervised.nodes.add(data.node);
  supervise();
  return () => {
    cleanups.delete(cleanup);
    if (data) supervised.nodes.delete(data.node);
    supervise();
  };
}

/**
 * What a container engine leaves outside the processes it was started as (podman's conmon and
 * the containers below it, their mounts), swept at exit and, through the supervisor, when this
 * process is killed outright. Returns a function that forgets the folder.
 */
export function sweepOnExit(folder: string): () => void {
  const sweep = (): void => sweepFolder(folder);
  installExitHook();
  cleanups.add(sweep);
  supervised.sweeps.add(folder);
  supervise();
  return () => {
    cleanups.delete(sweep);
    supervised.sweeps.delete(folder);
    supervise();
  };
}

/** Every process whose command line names the folder killed with all below it, then every mount below the folder. Synchronous. */
export function sweepFolder(folder: string): void {
  const named = spawnSync("pgrep", ["-f", folder], { encoding: "utf8" }).stdout.split("\n").filter(Boolean).map(Number);
  killTrees(named.filter((pid) => pid !== process.pid));
  unmountWhere((target) => target.startsWith(`${folder}/`));
}

/** Mounts whose target `pick` chooses, deepest first, detached lazily. Synchronous. */
export function unmountWhere(pick: (target: string) => boolean): void {
  const targets = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[1] ?? "")
    .filter((target) => target && pick(target))
    .sort((a, b) => b.length - a.length);
  for (const target of targets) spawnSync("umount", ["-l", target], { stdio: "ignore" });
}

/** The folder is gone already: nothing to remove at exit. */
export function forgetOnExit(folder: string): void {
  folders.delete(folder);
  supervised.folders.delete(folder);
  supervise();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: a plain kill of every child still alive.
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
    for (const cleanup of cleanups) cleanup();
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
    // All done here: the supervisor has nothing left to do.
    supervised.processes.clear();
    supervised.nodes.clear();
    supervised.folders.clear();
    supervised.sweeps.clear();
    if (stateFile) supervise();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      for (const child of live) child.kill("SIGKILL");
      process.exit(130);
    });
  }
}

// The supervisor: a detached process (its own session, so Ctrl-C and a killed process group
// spare it) that holds a pipe from this process. When the pipe closes, this process is gone,
// whichever way (SIGKILL included, or an exit hook that never ran because a synchronous child
// hung until it was killed): it then kills what is still listed in the state file, undoes the
// node and removes the folders. This process rewrites the file, synchronously, on every change.

const supervised = { processes: new Map<number, string>(), nodes: new Set<NodeCleanup>(), sweeps: new Set<string>(), folders: new Set<string>() };
let stateFile: string | undefined;

/** The state file the supervisor reads, written now; starts the supervisor on first use. */
function supervise(): void {
  stateFile ??= startSupervisor();
  const state: SupervisedState = {
    processes: [...supervised.processes].map(([pid, start]) => ({ pid, start })),
    nodes: [...supervised.nodes],
    sweeps: [...supervised.sweeps],
    folders: [...supervised.folders],
  };
  writeFileSync(`${stateFile}.tmp`, JSON.stringify(state));
  renameSync(`${stateFile}.tmp`, stateFile);
}

function startSupervisor(): string {
  const file = path.join(os.tmpdir(), `gitsync-supervisor-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({ processes: [], nodes: [], sweeps: [], folders: [] } satisfies SupervisedState));
  const child = spawn(process.execPath, [path.join(import.meta.dirname, "supervisor.js"), file, String(process.pid)], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.unref();
  (child.stdin as (Writable & { unref?: () => void }) | null)?.unref?.();
  return file;
}

/** A child to kill if this process dies: by pid and start time, so a reused pid is never killed. */
function superviseChild(child: ChildProcess): void {
  const pid = child.pid;
  if (!pid) return;
  const start = processStart(pid);
  if (!start) return;
  supervised.processes.set(pid, start);
  supervise();
  child.once("exit", () => {
    supervised.processes.delete(pid);
    supervise();
  });
}

/** SIGKILLs each process and everything below it, children first, and waits (up to 5 s) until they are gone. Synchronous. */
export function killTrees(pids: number[]): void {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone while we looked.
    }
  }
  const killed: number[] = [];
  const kill = (pid: number): void => {
    for (const child of children.get(pid) ?? []) kill(child);
    try {
      process.kill(pid, "SIGKILL");
      killed.push(pid);
    } catch {
      // Already gone.
    }
  };
  for (const pid of pids) kill(pid);
  const deadline = Date.now() + 5000;
  while (killed.some((pid) => existsSync(`/proc/${pid}`) && !zombie(pid)) && Date.now() < deadline) execFileSync("sleep", ["0.05"]);
}

function zombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
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
    superviseChild(child);
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
