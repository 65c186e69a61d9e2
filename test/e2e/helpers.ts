// Helpers of the e2e suite: waiting for the world to reach a state, and running the
// operator as a real child process.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
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
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, POD_NAME: identity } });
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

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
      await this.exit;
      clearTimeout(timer);
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
