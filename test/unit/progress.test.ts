import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { commandProgress, formatSeconds, progressLine } from "../../src/cli/progress.js";
import { ConditionSet, markProgress } from "../../src/runtime/conditions.js";
import { counter, describeProgress, formatAmount, ProgressThrottle, type Progress } from "../../src/util/progress.js";

describe("progress", () => {
  it("says what is under way in one line, with thousands separated", () => {
    assert.equal(describeProgress({ phase: "Downloading", done: 4210, total: 10000 }), "Downloading 4,210/10,000 objects");
    assert.equal(describeProgress({ phase: "Listing", done: 3000 }), "Listing 3,000 objects");
    assert.equal(describeProgress({ phase: "Writing", done: 12, total: 12, unit: "files" }), "Writing 12/12 files");
    assert.equal(describeProgress({ phase: "Uploading", done: 512 * 1024, total: 4 * 1024 * 1024, unit: "bytes" }), "Uploading 0.5/4.0 MiB");
    assert.equal(describeProgress({ phase: "Received", done: 1536, unit: "bytes" }), "Received 1.5 KiB");
  });

  it("formats bytes in the unit they read best in", () => {
    assert.equal(formatAmount(0, "bytes"), "0 B");
    assert.equal(formatAmount(1023, "bytes"), "1023 B");
    assert.equal(formatAmount(1024, "bytes"), "1.0 KiB");
    assert.equal(formatAmount(5 * 1024 ** 3, "bytes"), "5.0 GiB");
    assert.equal(formatAmount(1234567), "1,234,567");
  });

  it("adds a rate and an estimate once a phase has run a second", () => {
    const p: Progress = { phase: "Downloading", done: 4000, total: 10000 };
    assert.equal(progressLine(p, 0.5, 4000), "Downloading 4,000/10,000 objects");
    assert.equal(progressLine(p, 2, 4000), "Downloading 4,000/10,000 objects, 2,000 objects/s, about 3 s left");
    assert.equal(progressLine({ ...p, done: 10000 }, 5, 10000), "Downloading 10,000/10,000 objects, 2,000 objects/s");
    assert.equal(
      progressLine({ phase: "Uploading", done: 2 << 20, total: 8 << 20, unit: "bytes" }, 2, 2 << 20),
      "Uploading 2.0/8.0 MiB, 1.0 MiB/s, about 6 s left",
    );
    assert.equal(formatSeconds(119.5), "2 min 0 s");
    assert.equal(formatSeconds(61), "1 min 1 s");
  });

  it("lets a pass report first after the interval, then at most once per interval", () => {
    let now = 1000;
    const throttle = new ProgressThrottle(5000, 5000, () => now);
    assert.equal(throttle.due(), false);
    now = 5999;
    assert.equal(throttle.due(), false);
    now = 6000;
    assert.equal(throttle.due(), true);
    assert.equal(throttle.due(), false, "not twice in the same interval");
    now = 10999;
    assert.equal(throttle.due(), false);
    now = 11000;
    assert.equal(throttle.due(), true);
  });

  it("counts a phase from zero to its total", () => {
    const seen: Progress[] = [];
    const advance = counter((p) => seen.push(p), "Downloading", 3);
    advance();
    advance(2);
    assert.deepEqual(
      seen.map((p) => `${p.done}/${p.total}`),
      ["0/3", "1/3", "3/3"],
    );
    assert.doesNotThrow(() => counter(undefined, "Downloading", 3)(), "no sink, no report");
  });

  it("shows progress in Ready's message without changing Ready's status, and never beside Stalled", () => {
    const ready = new ConditionSet([{ type: "Ready", status: "True", reason: "Synced", message: "Pushed", lastTransitionTime: "t" }], 2);
    ready.set("Stalled", "True", "Failed", "x");
    markProgress(ready, "Downloading 1/2 objects");
    assert.deepEqual(
      ready.list().map((c) => [c.type, c.status, c.reason, c.message]),
      [
        ["Ready", "True", "Synced", "Downloading 1/2 objects"],
        ["Reconciling", "True", "Progressing", "Downloading 1/2 objects"],
      ],
    );
    const fresh = new ConditionSet(undefined, 1);
    markProgress(fresh, "Listing 0 objects");
    assert.deepEqual(
      fresh.list().map((c) => [c.type, c.status, c.reason]),
      [
        ["Ready", "False", "Progressing"],
        ["Reconciling", "True", "Progressing"],
      ],
    );
  });

  it("writes plain lines when the stream is not a terminal, and nothing when quiet", () => {
    const written: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written.push(chunk.toString("utf8"));
        done();
      },
    }) as unknown as NodeJS.WriteStream;
    const progress = commandProgress({ stream });
    progress.sink({ phase: "Listing", done: 0 });
    progress.sink({ phase: "Downloading", done: 2, total: 2 });
    progress.stop();
    const text = written.join("");
    assert.ok(!text.includes("\u001b"), "no escape sequences");
    assert.deepEqual(text.split("\n").filter(Boolean), ["Listing 0 objects", "Downloading 2/2 objects"]);
    const quiet = commandProgress({ quiet: true, stream });
    quiet.sink({ phase: "Listing", done: 0 });
    quiet.stop();
    assert.equal(written.join(""), text);
  });
});
