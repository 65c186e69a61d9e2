import assert from "node:assert/strict";
import { age, renderTable, resolveKind } from "../../src/cli/table.js";
import { kinds } from "../../src/controllers/index.js";

describe("the live commands' table", () => {
  const headers = ["NAME", "READY", "STATUS", "REVISION", "AGE"];
  const rows = [
    ["servicehandshake/shop", "True", "3 services agree (Strict)", "abc123def456", "5m"],
    ["composedeployment/web", "False", "HealthCheckFailed: service web did not become healthy within 2m; rolled back to main@sha1:0a1b2c3d", "-", "2h"],
  ];

  it("fits a narrow terminal by cutting only the status, with an ellipsis", () => {
    const table = renderTable(headers, rows, 80, 2);
    const lines = table.trimEnd().split("\n");
    for (const line of lines) assert.ok(line.length <= 80, `${line.length} columns: ${line}`);
    assert.match(lines[2] ?? "", /^composedeployment\/web\s+False\s+HealthCheckFailed: servic.*…\s+-\s+2h$/);
    assert.match(lines[1] ?? "", /abc123def456\s+5m$/, "the other columns keep their width");
  });

  it("shows every status whole on a wide terminal, columns aligned", () => {
    const table = renderTable(headers, rows, 250, 2);
    const lines = table.trimEnd().split("\n");
    assert.ok(lines[2]?.includes("rolled back to main@sha1:0a1b2c3d"));
    assert.equal(lines[0]?.indexOf("REVISION"), lines[1]?.indexOf("abc123def456"));
    assert.equal(lines[0]?.indexOf("AGE"), lines[2]?.indexOf("2h"));
  });

  it("never cuts the status below ten characters, however narrow", () => {
    const lines = renderTable(headers, rows, 20, 2).split("\n");
    assert.match(lines[2] ?? "", /HealthChe…/);
  });

  it("prints ages as kubectl does", () => {
    const now = Date.parse("2026-12-07T12:00:00Z");
    const ago = (seconds: number): string => age(now - seconds * 1000, now);
    assert.deepEqual([ago(5), ago(119), ago(600), ago(3 * 3600), ago(3 * 86400), ago(400 * 86400)], ["5s", "119s", "10m", "3h", "3d", "1y"]);
  });

  const words: [string, string][] = [
    ["shs", "ServiceHandshake"],
    ["ServiceHandshake", "ServiceHandshake"],
    ["servicehandshakes", "ServiceHandshake"],
    ["cbs", "ClusterBackupSync"],
    ["cdep", "ComposeDeployment"],
    ["psync", "PartitionSync"],
    ["dsa", "DatasetAdvert"],
    ["datasetadverts.gitsync.dev", "DatasetAdvert"],
  ];
  for (const [word, kind] of words) it(`takes "${word}" for ${kind}`, () => assert.equal(resolveKind(word, kinds).kind, kind));

  it("answers a typo with the kind it is closest to, and every kind there is", () => {
    assert.throws(() => resolveKind("cdeps", kinds), /unknown kind "cdeps"; did you mean cdep \(ComposeDeployment\)\? Kinds: ServiceHandshake \(shs\)/);
    assert.throws(
      () => resolveKind("pods", kinds),
      (err: Error) => !err.message.includes("did you mean") && /Kinds: /.test(err.message),
    );
  });
});
