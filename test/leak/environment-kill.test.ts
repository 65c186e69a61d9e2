// Nothing the local environment starts outlives the process that started it, even one that
// is SIGKILLed and so runs no exit hook: the supervisor reaps its servers, the node's
// containers, mounts, network namespaces, bridge and iptables rules, and podman's containers. Runs before the e2e
// suite (the node's bridge and chains are machine-wide, so two nodes cannot run at once).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { BRIDGE } from "../../hack/env/node.js";
import { leftovers, processesOf } from "./leftovers.js";

const ROOT = path.resolve(import.meta.dirname, "../../..");

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return check();
}

describe("the local environment after its process is SIGKILLed", function () {
  it("leaves no process, mount, network namespace, bridge, iptables rule or folder after 15 s", async () => {
    const netnsBefore = new Set(existsSync("/var/run/netns") ? readdirSync("/var/run/netns") : []);
    assert.equal(spawnSync("ip", ["link", "show", BRIDGE]).status, 1, `the bridge ${BRIDGE} exists before the test: another environment is running`);
    const child = spawn(process.execPath, [path.join(ROOT, "dist/test/leak/start-environment.js")], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const ready = await new Promise<{ dir: string; minioPid: number }>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const line = /READY (\{.*\})\n/.exec(out);
        if (line) resolve(JSON.parse(line[1]!) as { dir: string; minioPid: number });
      });
      child.once("exit", (code) => reject(new Error(`the environment exited (${code}) before it was up:\n${stderr}`)));
    });
    const before = leftovers(ready.dir, netnsBefore);
    for (const part of ["processes", "mounts", "the bridge", "iptables nat chains", "the folder"])
      assert.ok(
        before.some((l) => l.startsWith(part)),
        `the running environment has ${part} (else this test could not fail): ${before.join("; ")}`,
      );
    const servers = [...processesOf(ready.dir, child.pid), ready.minioPid];
    assert.ok(ready.minioPid > 0 && existsSync(`/proc/${ready.minioPid}`), `MinIO runs in its podman container (pid ${ready.minioPid})`);
    child.kill("SIGKILL");
    const clean = await until(() => leftovers(ready.dir, netnsBefore).length === 0, 15_000);
    assert.ok(clean, `left behind: ${leftovers(ready.dir, netnsBefore).join("; ")}`);
    const alive = servers.filter((pid) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z"));
    assert.deepEqual(alive, [], "every server the environment started is gone");
  });
});
