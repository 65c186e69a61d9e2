// Helpers of the e2e suite: waiting for the world to reach a state, and running the
// operator as a real child process.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { env, OPERATOR_USER, ROOT } from "./setup.js";

/** Retries fn until it stops throwing; rethrows its last error when time runs out. */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 30_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

export interface OperatorOptions {
  identity?: string;
  leaderElect?: boolean;
  /** Defaults to the probe operator (test-only kind); "gitsync" runs the real binary. */
  entry?: "probe" | "gitsync";
  args?: string[];
  /** More environment variables (a proxy, AWS settings); `undefined` removes one. */
  env?: Record<string, string | undefined>;
}

/** The operator as a child process, with its JSON log lines collected. */
export class OperatorProcess {
  readonly lines: string[] = [];
  readonly identity: string;
  private exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    private readonly child: ChildProcess,
    identity: string,
  ) {
    this.identity = identity;
    let partial = "";
    const collect = (chunk: Buffer): void => {
      partial += chunk.toString("utf8");
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      this.lines.push(...parts.filter(Boolean));
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    this.exit = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  }

  static start(options: OperatorOptions = {}): OperatorProcess {
    const identity = options.identity ?? `operator-${Math.random().toString(36).slice(2, 8)}`;
    const entry = options.entry === "gitsync" ? "dist/src/main.js" : "dist/test/e2e/fixtures/probe-operator.js";
    const args = [
      path.join(ROOT, entry),
      ...(options.entry === "gitsync" ? ["operator"] : []),
      `--kubeconfig=${env().users.get(OPERATOR_USER)?.kubeconfig}`,
      "--http-address=127.0.0.1:0",
      `--identity=${identity}`,
      `--work-dir=${mkdtempSync(path.join(os.tmpdir(), "gitsync-work-"))}`,
      options.leaderElect ? "--leader-elect" : "--no-leader-elect",
      "--leader-election-namespace=gitsync-system",
      ...(options.args ?? []),
    ];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, POD_NAME: identity, ...options.env } });
    return new OperatorProcess(child, identity);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True until the process has exited, whichever way. */
  isRunning(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Parsed JSON log records. */
  records(): Record<string, unknown>[] {
    return this.lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  async httpAddress(): Promise<string> {
    return eventually(() => {
      const record = this.records().find((r) => r.message === "Started HTTP endpoint");
      if (!record) throw new Error(`operator ${this.identity} has not started its HTTP endpoint:\n${this.lines.slice(-10).join("\n")}`);
      return String(record.address);
    }, 30_000);
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exit;
  }

  /**
   * SIGTERM, then SIGKILL after 15 s. Waits for the exit, and says what the process was doing
   * if even SIGKILL does not end it within 30 s more (CI once saw an after hook time out here).
   */
  async stop(): Promise<void> {
    if (!this.isRunning()) return;
    const started = Date.now();
    this.child.kill("SIGTERM");
    const kill = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    let stuck: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<"stuck">((resolve) => (stuck = setTimeout(() => resolve("stuck"), 45_000)));
    try {
      if ((await Promise.race([this.exit, gaveUp])) === "stuck") {
        const state = (() => {
          try {
            return readFileSync(`/proc/${this.child.pid}/status`, "utf8").split("\n").slice(0, 3).join(", ");
          } catch (err) {
            return (err as Error).message;
          }
        })();
        throw new Error(`operator ${this.identity} (pid ${this.child.pid}) did not exit ${Date.now() - started} ms after SIGTERM and SIGKILL: ${state}`);
      }
    } finally {
      clearTimeout(kill);
      clearTimeout(stuck);
    }
  }
}

/** `gitsync ARGS` as a CI step or a CronJob runs it: the built binary, with the given environment. */
export function runGitsync(args: string[], environment: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, "dist/src/main.js"), ...args], { env: environment, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
