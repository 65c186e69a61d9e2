import assert from "node:assert/strict";
import { parse } from "yaml";
import { checkHandshake } from "../../src/handshake/check.js";
import type { ServiceManifest } from "../../src/handshake/manifests.js";
import { actualStateFor, writeBackServiceYaml } from "../../src/handshake/writeback.js";

const pricing: ServiceManifest = {
  name: "pricing",
  repos: [],
  source: "pricing",
  dependencies: [{ key: "stockService", sync: "strict", version: "2.1.0" }],
  contract: { version: "1.0.0", endpoints: [] },
};
const stock = (version: string): ServiceManifest => ({ name: "stock", repos: [], source: "stock", dependencies: [], contract: { version, endpoints: [] } });
const serviceYaml =
  "# owned by team pricing\nmetadata:\n  name: pricing # do not rename\ndesiredState:\n  stockService:\n    sync: strict\n    version: 2.1.0\n";

describe("writeBack", () => {
  it("records each dependency's result under its desiredState key", () => {
    const state = actualStateFor(pricing, 0, checkHandshake([pricing, stock("2.2.0")], "strict").edges, "t1");
    assert.deepEqual(state, {
      lastChecked: "t1",
      handshakeStatus: "failed",
      details: { stockService: { status: "failed", message: "pricing expects stock 2.1.0 (strict), but stock's contract is 2.2.0" } },
    });
  });

  it("writes actualState and keeps the team's comments and fields", () => {
    const state = actualStateFor(pricing, 0, checkHandshake([pricing, stock("2.1.0")], "strict").edges, "t1");
    const text = writeBackServiceYaml(serviceYaml, state) ?? "";
    assert.match(text, /^# owned by team pricing$/m);
    assert.match(text, /name: pricing # do not rename/);
    assert.deepEqual((parse(text) as { actualState: unknown }).actualState, state);
  });

  it("writes nothing when only lastChecked would change", () => {
    const edges = checkHandshake([pricing, stock("2.1.0")], "strict").edges;
    const once = writeBackServiceYaml(serviceYaml, actualStateFor(pricing, 0, edges, "t1")) ?? "";
    assert.equal(writeBackServiceYaml(once, actualStateFor(pricing, 0, edges, "t2")), undefined);
    const failedEdges = checkHandshake([pricing, stock("2.2.0")], "strict").edges;
    assert.ok(writeBackServiceYaml(once, actualStateFor(pricing, 0, failedEdges, "t3")), "a changed result is written");
  });
});
