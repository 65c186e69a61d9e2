import { gitBlobId } from "../../src/util/gitid.js";
import assert from "node:assert/strict";
import {
  classifyByContent,
  clusterCounts,
  commitMessage,
  planSync,
  repoPath,
  selectKeys,
  unsafeKeyReason,
  writableKeys,
  type Index,
  type PlanOptions,
} from "../../src/backup/plan.js";

const options = (more: Partial<PlanOptions> = {}): PlanOptions => ({
  prefix: "clusterbackup/",
  destPath: "",
  include: [],
  exclude: [],
  prune: true,
  maxDeletePercent: 50,
  encrypt: [],
  ...more,
});
const key = (cluster: string, name: string): string => `clusterbackup/${cluster}/default/configmaps/${name}.yaml`;
const index = (...entries: [string, string][]): Index => Object.fromEntries(entries.map(([k, etag]) => [k, { etag, size: 10 }]));

describe("backup planning", () => {
  const a = key("east", "a");
  const b = key("east", "b");
  const c = key("west", "c");
  const d = key("west", "d");

  it("downloads only added and modified objects when the previous index is known", () => {
    const plan = planSync(index([a, "1"], [b, "2x"], [d, "4"]), index([a, "1"], [b, "2"], [c, "3"]), new Set([a, b, c]), options());
    assert.deepEqual([plan.added, plan.modified, plan.deleted, plan.download], [[d], [b], [c], [d, b]]);
    assert.equal(plan.compareByContent, false);
  });

  it("downloads everything once to compare by content when there is no index", () => {
    const plan = planSync(index([a, "1"], [b, "2"]), undefined, new Set([a]), options());
    assert.deepEqual(plan.download, [a, b]);
    assert.equal(plan.compareByContent, true);
    const bytes = new TextEncoder().encode("same");
    assert.deepEqual(
      classifyByContent(
        new Map([
          [a, gitBlobId(bytes)],
          [b, "x"],
        ]),
        new Map([[a, gitBlobId(bytes)]]),
        options(),
      ),
      { added: [b], modified: [] },
    );
  });

  it("computes the blob id git computes", () => {
    assert.equal(gitBlobId(new TextEncoder().encode("hello\n")), "ce013625030ba8dba906f756967f9e9ca394464a");
  });

  it("deletes nothing and says why when the listing is empty while the repo holds files", () => {
    const previous = index([a, "1"], [b, "2"]);
    const plan = planSync({}, previous, new Set([a, b]), options());
    assert.deepEqual(plan.deleted, []);
    assert.match(plan.pruneRefused ?? "", /listing under "clusterbackup\/" is empty while the repository holds 2 files/);
    assert.deepEqual(plan.nextIndex, previous, "refused deletions stay in the index");
  });

  it("refuses to delete more than maxDeletePercent of the files", () => {
    const plan = planSync(index([a, "1"]), index([a, "1"], [b, "2"], [c, "3"]), new Set([a, b, c]), options());
    assert.deepEqual(plan.deleted, []);
    assert.match(plan.pruneRefused ?? "", /deleting 2 of 3 files \(67%\) exceeds maxDeletePercent 50/);
    assert.deepEqual(plan.deleted, []);
  });

  it("never deletes with prune off, nor outside the prefix", () => {
    assert.deepEqual(planSync(index([a, "1"]), index([a, "1"], [b, "2"]), new Set([a, b]), options({ prune: false })).deleted, []);
    assert.deepEqual(
      planSync(index([a, "1"], [b, "1"]), index([a, "1"], [b, "1"]), new Set([a, b, "README.md", "clusterbackup-old/x"]), options()).deleted,
      [],
    );
  });

  it("keeps keys below destPath and marks encrypted ones .age", () => {
    assert.equal(repoPath(a, options({ destPath: "backups/" })), `backups/${a}`);
    assert.equal(repoPath("clusterbackup/e/ns/secrets/s.yaml", options({ encrypt: ["**/secrets/**"] })), "clusterbackup/e/ns/secrets/s.yaml.age");
  });

  it("selects keys by include and exclude globs", () => {
    const listing = new Map([a, c, "clusterbackup/east/ns/secrets/s.yaml"].map((k) => [k, { etag: "1", size: 1 }]));
    assert.deepEqual(Object.keys(selectKeys(listing, { include: ["clusterbackup/east/**"], exclude: ["**/secrets/**"] })), [a]);
  });

  it("skips keys that cannot be files, naming each with the reason, and folder markers silently", () => {
    const info = { etag: "1", size: 1 };
    const listing = new Map(
      [a, "../x.yaml", "e/./y", "e//z", ".git/config", "e/.GIT/hooks/h", "e/tab\t", ".gitsync/backup-index.json", "e/f", "e/f/g", "e/__proto__"].map((k) => [
        k,
        info,
      ]),
    );
    const { writable, skipped } = writableKeys(listing.set("e/marker/", { etag: "2", size: 0 }), options());
    assert.deepEqual([...writable.keys()].sort(), [a, "e/__proto__", "e/f/g"].sort());
    assert.deepEqual(
      skipped.map((s) => s.split(": ")[0]).sort(),
      ['"../x.yaml"', '"e/./y"', '"e//z"', '".git/config"', '"e/.GIT/hooks/h"', '"e/tab\\t"', '".gitsync/backup-index.json"', '"e/f"'].sort(),
    );
    assert.match(skipped.find((s) => s.startsWith('"e/f"')) ?? "", /a file and the folder of other objects/);
    assert.equal(unsafeKeyReason("e/x.yaml", options({ destPath: "backups" })), undefined);
    assert.match(unsafeKeyReason(".gitsync/backup-index.json", options({ destPath: "backups" })) ?? "", /own index file/);
    assert.equal(unsafeKeyReason("east/.gitsync/backup-index.json", options()), undefined);
    assert.match(unsafeKeyReason("n".repeat(256), options()) ?? "", /longer than 255 bytes/);
  });

  it("counts files per cluster, the first segment after the prefix", () => {
    assert.deepEqual(clusterCounts([a, b, c], "clusterbackup/"), [
      { name: "east", files: 2 },
      { name: "west", files: 1 },
    ]);
  });

  it("writes the commit message the existing dashboards and reviewers read", () => {
    const message = commitMessage(
      {
        clusters: [
          { name: "production-east", files: 245 },
          { name: "production-west", files: 189 },
          { name: "staging", files: 67 },
        ],
        files: 501,
        deleted: 2,
      },
      { added: 23, modified: 15 },
      new Date("2025-07-12T22:06:58.123Z"),
    );
    assert.equal(
      message,
      "Automated backup sync - 2025-07-12 22:06:58 UTC\n\nClusters processed: 3\n- production-east: 245 files\n- production-west: 189 files\n- staging: 67 files\n\nTotal files: 501\nChanges: 23 new, 15 modified, 2 deleted\n",
    );
  });
});
