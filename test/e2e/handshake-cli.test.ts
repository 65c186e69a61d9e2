// `gitsync handshake check` as CI runs it: the real binary, sources as git URLs on the
// local smart-HTTP server with basic auth.

import assert from "node:assert/strict";
import { runGitsync } from "./helpers.js";
import { env } from "./setup.js";

function gitsync(args: string[], token = env().git.password): Promise<{ code: number; stdout: string; stderr: string }> {
  return runGitsync(args, { ...process.env, GIT_USERNAME: env().git.username, GIT_TOKEN: token });
}

describe("gitsync handshake check (git URLs)", function () {
  before(() => {
    env().git.createRepo("cli-pricing", {
      "service.yaml": "metadata:\n  name: pricing\ndesiredState:\n  stockService:\n    sync: strict\n    version: 2.1.0\n",
      "contract.yaml": "version: 1.0.0\n",
      "interface.yaml": "dependencies:\n  - name: stock\n    outbound:\n      method: GET\n      path: /stock/{id}\n",
    });
    env().git.createRepo("cli-stock", {
      "service.yaml": "metadata:\n  name: stock\n",
      "contract.yaml": "version: 2.1.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /stock/{productId}\n",
    });
  });

  it("passes on agreeing repos and fails with exit 1 once a dependency moves on", async () => {
    const sources = [`${env().git.url("cli-pricing")}#main`, env().git.url("cli-stock")];
    const ok = await gitsync(["handshake", "check", ...sources]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Handshake succeeded \(strict\): 2\/2 services agree/);

    env().git.commitFiles(
      "cli-stock",
      { "contract.yaml": "version: 2.2.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /stock/{productId}\n" },
      "Bump stock",
    );
    const failed = await gitsync(["handshake", "check", "--output", "github", ...sources]);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /::error title=VersionMismatch \(pricing -> stock\)::pricing expects stock 2.1.0 \(strict\), but stock's contract is 2.2.0/);
  });

  it("exits 2 with a clear message, and no secret, when a source is unreachable", async () => {
    const wrong = "wrong-token-5a4b3c";
    const result = await gitsync(["handshake", "check", env().git.url("cli-stock")], wrong);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /authentication failed for http:\/\/127\.0\.0\.1:\d+\/cli-stock\.git/);
    assert.ok(!result.stderr.includes(wrong) && !result.stdout.includes(wrong));
  });
});
