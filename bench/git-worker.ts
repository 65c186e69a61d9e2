// One git-layer operation in its own process, so bench/git.ts can read its peak RSS.
// Prints {"opMs": ..., "fetched": ...}: the operation's own time, without Node's start-up.

import { readFileSync } from "node:fs";
import { GitRepository } from "../src/git/repo.js";

const [url, dir, username, password] = process.argv.slice(2);
if (!url || !dir) throw new Error("usage: git-worker URL DIR USER PASSWORD");
// Over SSH the key and known_hosts come as the commands take them (GIT_SSH_KEY_FILE, GIT_KNOWN_HOSTS).
const ssh = process.env.GIT_SSH_KEY_FILE
  ? { identity: readFileSync(process.env.GIT_SSH_KEY_FILE, "utf8"), knownHosts: readFileSync(process.env.GIT_KNOWN_HOSTS ?? "", "utf8") }
  : {};
const repo = new GitRepository(url, dir, { username, password, ...ssh });
const start = performance.now();
const result = await repo.sync({ branch: "main" });
process.stdout.write(JSON.stringify({ opMs: performance.now() - start, fetched: result.fetched, commit: result.commit }));
