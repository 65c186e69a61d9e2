// A keyed work queue in the manner of client-go's workqueue: a key waits at most once,
// never runs twice at the same time, is re-run once if it was added while running, and
// fails into per-key exponential backoff.

import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from "../util/backoff.js";

/** What a handler asks for next: nothing, a later pass, or a retry after failure. */
export interface WorkResult {
  requeueAfterMs?: number;
  failed?: boolean;
  /** With failed: wait this long instead of the backoff delay. */
  retryAfterMs?: number;
}

export interface WorkQueueOptions {
  concurrency: number;
  handler: (key: string) => Promise<WorkResult>;
  backoff?: BackoffPolicy;
  onDepthChange?: (depth: number) => void;
}

export class WorkQueue {
  private readonly waiting: string[] = [];
  private readonly waitingSet = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly delayed = new Map<string, { timer: NodeJS.Timeout; at: number }>();
  private readonly failures = new Map<string, number>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly keyWaiters = new Map<string, (() => void)[]>();
  private stopped = false;

  constructor(private readonly options: WorkQueueOptions) {}

  /** Queues the key now; a pending delayed add for it is dropped, since this pass supersedes it. */
  add(key: string): void {
    if (this.stopped) return;
    this.cancelDelayed(key);
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waitingSet.has(key)) return;
    this.waitingSet.add(key);
    this.waiting.push(key);
    this.reportDepth();
    this.pump();
  }

  /** Queues the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.delayed.set(key, { timer, at });
  }

  get depth(): number {
    return this.waiting.length;
  }

  /** Failures in a row for the key (0 after a success). */
  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * Drops every pass of the key that waits (now, after a delay, or as a re-run) and resolves
   * once none runs: the key is handed to another replica.
   */
  async forget(key: string): Promise<void> {
    this.drop(key);
    if (this.running.has(key)) {
      // The running pass, when it ends, schedules nothing (see run).
      await new Promise<void>((resolve) => this.keyWaiters.set(key, [...(this.keyWaiters.get(key) ?? []), resolve]));
    }
  }

  private drop(key: string): void {
    this.cancelDelayed(key);
    this.dirty.delete(key);
    if (this.waitingSet.delete(key)) {
      this.waiting.splice(this.waiting.indexOf(key), 1);
      this.reportDepth();
    }
    this.failures.delete(key);
  }

  /** Stops taking work, drops pending delays, and waits for running handlers up to timeoutMs. */
  async shutdown(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.waiting.length = 0;
    this.waitingSet.clear();
    this.reportDepth();
    if (this.running.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const drained = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    return result;
  }

  private cancelDelayed(key: string): void {
    const existing = this.delayed.get(key);
    if (existing) {
      clearTimeout(existing.timer);
      this.delayed.delete(key);
    }
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.options.concurrency && this.waiting.length > 0) {
      const key = this.waiting.shift() as string;
      this.waitingSet.delete(key);
      this.running.add(key);
      this.reportDepth();
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    let result: WorkResult;
    try {
      result = await this.options.handler(key);
    } catch {
      // Handlers report their own errors; a throw that escapes is still retried, never lost.
      result = { failed: true };
    }
    this.running.delete(key);
    const forgotten = this.keyWaiters.get(key);
    if (forgotten) {
      this.keyWaiters.delete(key);
      this.drop(key);
      forgotten.forEach((resolve) => resolve());
    } else {
      this.schedule(key, result);
      if (this.dirty.delete(key)) this.add(key);
    }
    if (this.running.size === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
    this.pump();
  }

  private schedule(key: string, result: WorkResult): void {
    if (result.failed) {
      const attempt = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, attempt);
      this.addAfter(key, result.retryAfterMs ?? backoffDelay(attempt, this.options.backoff ?? DEFAULT_BACKOFF));
      return;
    }
    this.failures.delete(key);
    if (result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
  }

  private reportDepth(): void {
    this.options.onDepthChange?.(this.waiting.length);
  }
}
