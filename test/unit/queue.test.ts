import assert from "node:assert/strict";
import { backoffDelay, withJitter } from "../../src/util/backoff.js";
import { WorkQueue, type WorkResult } from "../../src/runtime/queue.js";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("WorkQueue", () => {
  it("merges duplicate keys that wait", async () => {
    const seen: string[] = [];
    const gate = deferred();
    const queue = new WorkQueue({ concurrency: 1, handler: async (key) => (seen.push(key), await gate.promise, {}) });
    queue.add("a");
    queue.add("b");
    queue.add("b");
    queue.add("b");
    assert.equal(queue.depth, 1, "b waits once");
    gate.resolve();
    for (let i = 0; i < 5; i++) await tick();
    assert.ok(await queue.shutdown(1000));
    assert.deepEqual(seen, ["a", "b"]);
  });

  it("never runs one key twice at once, and runs it again once if it was added meanwhile", async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const gates = [deferred(), deferred()];
    const queue = new WorkQueue({
      concurrency: 4,
      handler: async () => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        await gates[runs++]?.promise;
        running -= 1;
        return {};
      },
    });
    queue.add("k");
    await tick();
    queue.add("k");
    queue.add("k");
    await tick();
    assert.equal(runs, 1);
    gates[0]?.resolve();
    await tick();
    await tick();
    assert.equal(runs, 2, "re-run once for the adds during the first run");
    gates[1]?.resolve();
    assert.ok(await queue.shutdown(1000));
    assert.equal(maxRunning, 1);
  });

  it("bounds concurrency across keys", async () => {
    let running = 0;
    let maxRunning = 0;
    const gate = deferred();
    const queue = new WorkQueue({
      concurrency: 2,
      handler: async () => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        await gate.promise;
        running -= 1;
        return {};
      },
    });
    for (const key of ["a", "b", "c", "d"]) queue.add(key);
    await tick();
    assert.equal(running, 2);
    assert.equal(queue.depth, 2);
    gate.resolve();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(maxRunning, 2);
    await queue.shutdown(1000);
  });

  it("counts failures per key and forgets them after a success", async () => {
    const results: WorkResult[] = [{ failed: true, retryAfterMs: 1 }, { failed: true, retryAfterMs: 1 }, {}];
    let calls = 0;
    const done = deferred();
    const queue: WorkQueue = new WorkQueue({
      concurrency: 1,
      handler: (): Promise<WorkResult> => {
        const result = results[calls++] ?? {};
        if (calls === 2) assert.equal(queue.failureCount("k"), 1);
        if (calls === 3) setImmediate(done.resolve);
        return Promise.resolve(result);
      },
    });
    queue.add("k");
    await done.promise;
    await tick();
    assert.equal(calls, 3);
    assert.equal(queue.failureCount("k"), 0);
    await queue.shutdown(100);
  });

  it("lets an immediate add replace a pending delayed one", async () => {
    let calls = 0;
    const queue = new WorkQueue({ concurrency: 1, handler: () => (calls++, Promise.resolve({})) });
    queue.addAfter("k", 60_000);
    queue.add("k");
    await tick();
    assert.equal(calls, 1);
    assert.ok(await queue.shutdown(100), "no timer left behind");
  });

  it("takes no work after shutdown", async () => {
    let calls = 0;
    const queue = new WorkQueue({ concurrency: 1, handler: () => (calls++, Promise.resolve({})) });
    await queue.shutdown(100);
    queue.add("k");
    await tick();
    assert.equal(calls, 0);
  });
});

describe("WorkQueue.forget (a key handed to another replica)", () => {
  it("drops the waiting and delayed passes, waits for the running one, and schedules nothing after it", async () => {
    const gate = deferred();
    const seen: string[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      handler: async (key): Promise<WorkResult> => {
        seen.push(key);
        if (key === "moving") await gate.promise;
        return { requeueAfterMs: 1 };
      },
    });
    queue.add("moving");
    queue.add("waiting");
    queue.addAfter("delayed", 5);
    await tick();
    queue.add("moving"); // added while running: would run again
    let forgotten = false;
    const forgetting = Promise.all(["moving", "waiting", "delayed"].map((k) => queue.forget(k))).then(() => (forgotten = true));
    await tick();
    assert.equal(forgotten, false, "waits for the running pass");
    gate.resolve();
    await forgetting;
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(seen, ["moving"], "nothing ran after the hand-over, and no requeue");
    assert.equal(queue.depth, 0);
  });
});

describe("backoff", () => {
  it("doubles per attempt from the base, within [50%, 100%] jitter, up to the cap", () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, () => 1)),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.deepEqual(
      [1, 2, 3].map((n) => backoffDelay(n, policy, () => 0)),
      [50, 100, 200],
    );
  });

  it("adds only positive jitter to intervals", () => {
    assert.equal(
      withJitter(1000, 0.1, () => 0),
      1000,
    );
    assert.equal(
      withJitter(1000, 0.1, () => 1),
      1100,
    );
  });
});
