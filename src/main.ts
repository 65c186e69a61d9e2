#!/usr/bin/env node
// `gitsync`: the operator and the commands that run its engines once (in CI, in a CronJob).

import { readFileSync } from "node:fs";
import type { LiveCommand } from "./cli/live.js";
import { nodeVersionProblem } from "./util/node-version.js";

// Each command is imported only when it runs: a CronJob's `backup sync` or a CI step's
// `handshake check` does not load the Kubernetes client or the controllers.

const USAGE = `Usage: gitsync <command> [options]

Commands:
  operator     run the controllers (see gitsync operator --help)
  handshake    check ServiceHandshake agreement in CI (gitsync handshake check --help)
  backup       mirror cluster backups from S3 into git once (gitsync backup sync --help)
  dataset      discover, watch, import and publish dataset adverts in etcd (gitsync dataset --help)
  compose      render and plan ComposeDeployment projects (gitsync compose --help)
  partition    mirror repos through an S3 bucket across a partition, once (gitsync partition --help)
  get          list gitsync resources in the cluster, with readiness (gitsync get --help)
  reconcile    reconcile a resource now and wait for the result
  suspend, resume   stop and restart a resource's reconciles
  events       a resource's events and its children's
  tree, trace  what a resource reads and owns; which resource manages an object
  migrate      rewrite objects stored at a deprecated API version, then trim the CRDs' storedVersions
  version      print the version

Run 'gitsync <command> --help' for a command's options.
`;

/** The commands for live resources (cli/live.ts), named here so that other commands never load them. */
const LIVE: readonly LiveCommand[] = ["get", "reconcile", "suspend", "resume", "events", "tree", "trace", "migrate"];
const isLiveCommand = (command: string | undefined): command is LiveCommand => (LIVE as readonly (string | undefined)[]).includes(command);

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const problem = nodeVersionProblem(process.versions.node);
  if (problem) {
    process.stderr.write(`${problem}\n`);
    return 2;
  }
  const [command, ...rest] = argv;
  if (isLiveCommand(command)) return (await import("./cli/live.js")).runLive(command, rest);
  switch (command) {
    case "operator": {
      const [{ runOperator }, { controllers }] = await Promise.all([import("./cli/operator.js"), import("./controllers/index.js")]);
      return runOperator(rest, controllers);
    }
    case "backup":
      return (await import("./cli/backup.js")).runBackup(rest);
    case "handshake":
      return (await import("./cli/handshake.js")).runHandshake(rest);
    case "dataset":
      return (await import("./cli/dataset.js")).runDataset(rest);
    case "compose":
      return (await import("./cli/compose.js")).runCompose(rest);
    case "partition":
      return (await import("./cli/partition.js")).runPartition(rest);
    case "version":
    case "--version":
      process.stdout.write(`gitsync ${version()}\n`);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`gitsync: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

/** What escaped a command: one line naming the error, the stack only when asked for (GITSYNC_DEBUG=1). */
function crashed(err: unknown): number {
  const text = err instanceof Error ? (process.env.GITSYNC_DEBUG ? (err.stack ?? err.message) : `${err.name}: ${err.message}`) : String(err);
  process.stderr.write(`gitsync: unexpected error: ${text}\n${process.env.GITSYNC_DEBUG ? "" : "(set GITSYNC_DEBUG=1 for the stack trace)\n"}`);
  return 1;
}

process.exitCode = await main(process.argv.slice(2)).catch(crashed);
