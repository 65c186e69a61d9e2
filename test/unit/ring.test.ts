import assert from "node:assert/strict";
import { assignShards, DEFAULT_SLACK, Ring } from "../../src/runtime/ring.js";

const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `ns-${i % 7}/object-${i}`);

function fresh(n: number, members: string[]): Map<string, string> {
  return assignShards(new Map(keys(n).map((k) => [k, undefined])), members);
}

function loads(assigned: Map<string, string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const member of assigned.values()) counts.set(member, (counts.get(member) ?? 0) + 1);
  return counts;
}

/** The objects whose owner differs between two assignments. */
function moved(before: Map<string, string>, after: Map<string, string>): number {
  return [...after].filter(([key, member]) => before.get(key) !== member).length;
}

/** The next assignment, as the sharder computes it: every owner that is still a member stays current. */
function next(before: Map<string, string>, members: string[]): Map<string, string> {
  return assignShards(new Map([...before].map(([k, m]) => [k, members.includes(m) ? m : undefined])), members);
}

describe("shard assignment (consistent hashing with bounded loads)", () => {
  it("gives every member its share within the bound, and no more", () => {
    for (const [n, m] of [
      [300, 3],
      [3000, 3],
      [1000, 7],
      [10, 4],
    ] as const) {
      const members = Array.from({ length: m }, (_, i) => `replica-${i}`);
      const assigned = fresh(n, members);
      assert.equal(assigned.size, n);
      const bound = Math.ceil((n / m) * (1 + DEFAULT_SLACK));
      for (const [member, count] of loads(assigned)) assert.ok(count <= bound, `${member} holds ${count} of ${n}, bound ${bound}`);
      if (m === 3) for (const count of loads(assigned).values()) assert.ok(count >= n - 2 * bound, `${count} of ${n}`);
    }
  });

  it("is deterministic and does not depend on the order members are given in", () => {
    const a = fresh(500, ["a", "b", "c"]);
    const b = fresh(500, ["c", "a", "b"]);
    assert.deepEqual([...a].sort(), [...b].sort());
  });

  it("moves nothing when nothing changes", () => {
    const before = fresh(1000, ["a", "b", "c"]);
    assert.equal(moved(before, next(before, ["a", "b", "c"])), 0);
  });

  it("moves no more than the ideal share when members join, one at a time or together", () => {
    const before = fresh(3000, ["a", "b", "c"]);
    const together = next(before, ["a", "b", "c", "d", "e"]);
    const oneByOne = next(next(before, ["a", "b", "c", "d"]), ["a", "b", "c", "d", "e"]);
    const ideal = (3000 * 2) / 5;
    assert.ok(moved(before, together) <= ideal, `${moved(before, together)} moved, ideal ${ideal}`);
    assert.ok(moved(before, oneByOne) <= ideal, `${moved(before, oneByOne)} moved, ideal ${ideal}`);
    // Only towards the new members: none between the old ones.
    for (const [key, member] of together) if (before.get(key) !== member) assert.ok(["d", "e"].includes(member), `${key} → ${member}`);
  });

  it("moves only the objects of the members that left", () => {
    const before = fresh(3000, ["a", "b", "c", "d", "e"]);
    const after = next(before, ["a", "b"]);
    const gone = [...before.values()].filter((m) => !["a", "b"].includes(m)).length;
    assert.equal(moved(before, after), gone);
    assert.deepEqual([...new Set(after.values())].sort(), ["a", "b"]);
  });

  it("sends an object to its first preference when that member has room", () => {
    const ring = new Ring(["a", "b", "c"]);
    const assigned = fresh(30, ["a", "b", "c"]);
    const first = [...assigned].filter(([key, member]) => ring.preference(key)[0] === member).length;
    assert.ok(first >= 25, `${first} of 30 at their first preference`);
    assert.deepEqual(ring.preference("x").sort(), ["a", "b", "c"]);
  });

  it("assigns nothing without members", () => {
    assert.equal(fresh(10, []).size, 0);
  });
});
