// What git fetches cost, on the process's registry: bytes received and time per fetch.

import { Counter, Histogram } from "prom-client";
import { registry } from "../util/registry.js";

export const gitFetchBytes = new Counter({
  name: "gitsync_git_fetch_bytes_total",
  help: "Bytes received by git fetches (clones and incremental fetches): the packfiles and the negotiation around them.",
  registers: [registry],
});

export const gitFetchDuration = new Histogram({
  name: "gitsync_git_fetch_duration_seconds",
  help: "Time of one git fetch, from the request to the stored packfile.",
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [registry],
});
