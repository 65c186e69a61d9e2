// `gitsync handshake check`: the ServiceHandshake check in CI. Sources are local folders or
// git URLs (URL#branch). Exit 0: every handshake passes; 1: any fails; 2: invalid input or
// an unreachable source.

import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { GitCredentials } from "../git/auth.js";
import { GitRepository } from "../git/repo.js";
import { WorkDirs } from "../git/workdir.js";
import { checkHandshake } from "../handshake/check.js";
import { formatResult, type OutputFormat } from "../handshake/format.js";
import { parseService, type ServiceFiles, type ServiceManifest } from "../handshake/manifests.js";
import { collectServiceFiles } from "../handshake/sources.js";
import { isSshUrl } from "../util/giturl.js";
import { safeUrl } from "../util/redact.js";
import { commandGitCredentials, SSH_FLAGS, SSH_USAGE } from "./git-credentials.js";

export const HANDSHAKE_USAGE = `Usage: gitsync handshake check [--mode strict|relaxed] [--output text|json|junit|github] SOURCE...

Checks that every service's dependencies are at the versions it expects and offer the
endpoints it calls. SOURCE is a folder holding service.yaml, contract.yaml (or openapi.yaml)
and interface.yaml, or a git URL (https://, ssh:// or user@host:path) with an optional
#branch (HTTP credentials from GIT_USERNAME and GIT_TOKEN).

Options:
  --mode strict|relaxed      default strict
  --output, -o FORMAT        text, json, junit or github
${SSH_USAGE}

Exit codes: 0 every handshake passes, 1 a handshake fails, 2 invalid input or unreachable source.
`;

export async function runHandshake(argv: string[], out: (text: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "check") {
    out(HANDSHAKE_USAGE);
    return sub === "--help" || sub === "-h" ? 0 : 2;
  }
  let values: { mode?: string; output?: string; help?: boolean; "ssh-key"?: string; "known-hosts"?: string };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        mode: { type: "string", default: "strict" },
        output: { type: "string", short: "o", default: "text" },
        help: { type: "boolean", short: "h" },
        ...SSH_FLAGS,
      },
    }));
  } catch (err) {
    process.stderr.write(`gitsync handshake check: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.help) return (out(HANDSHAKE_USAGE), 0);
  const mode = values.mode?.toLowerCase();
  if (mode !== "strict" && mode !== "relaxed") return usageError(`--mode must be strict or relaxed, not "${values.mode}"`);
  if (!["text", "json", "junit", "github"].includes(values.output ?? ""))
    return usageError(`--output must be text, json, junit or github, not "${values.output}"`);
  if (positionals.length === 0) return usageError("name at least one SOURCE");

  let manifests: ServiceManifest[];
  try {
    const credentials = commandGitCredentials(process.env, { sshKey: values["ssh-key"], knownHosts: values["known-hosts"] });
    manifests = await Promise.all(positionals.map(async (source) => parseService(await readSource(source, credentials))));
  } catch (err) {
    process.stderr.write(`gitsync handshake check: ${(err as Error).message}\n`);
    return 2;
  }
  const result = checkHandshake(manifests, mode);
  out(formatResult(result, values.output as OutputFormat));
  return result.handshake ? 0 : 1;
}

function usageError(message: string): number {
  process.stderr.write(`gitsync handshake check: ${message}\n\n${HANDSHAKE_USAGE}`);
  return 2;
}

/** The files of one source: a folder, or a git URL read at the tip of its branch. */
async function readSource(source: string, credentials: GitCredentials | undefined): Promise<ServiceFiles> {
  if (!/^[a-z]+:\/\//i.test(source) && !isSshUrl(source.split("#")[0]!)) {
    if (!existsSync(source)) throw new Error(`${source}: no such folder`);
    const read = (name: string): string | undefined => (existsSync(path.join(source, name)) ? readFileSync(path.join(source, name), "utf8") : undefined);
    return collectServiceFiles(source, undefined, (name) => Promise.resolve(read(name)));
  }
  const [url = "", branch = "main"] = source.split("#");
  const work = new WorkDirs(path.join(os.tmpdir(), `gitsync-handshake-${process.pid}`));
  return work.withTemp("clone", async (dir) => {
    const repo = new GitRepository(url, dir, credentials);
    const { commit } = await repo.sync({ branch });
    return collectServiceFiles(`${safeUrl(url)}#${branch}`, url, (name) => repo.readText(commit, name));
  });
}
