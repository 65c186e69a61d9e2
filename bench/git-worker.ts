// One git-layer operation in its own process, so bench/git.ts can read its peak RSS.
// Prints {"opMs": ..., "fetched": ...}: the operation's own time, without Node's start-up.

import { GitRepository } from "../src/git/repo.js";

const [url, dir, username, password] = process.argv.slice(2);
if (!url || !dir) throw new Error("usage: git-worker URL DIR USER PASSWORD");
const repo = new GitRepository(url, dir, { username, password });
const start = performance.now();
const result = await repo.sync({ branch: "main" });
process.stdout.write(JSON.stringify({ opMs: performance.now() - start, fetched: result.fetched, commit: result.commit }));
