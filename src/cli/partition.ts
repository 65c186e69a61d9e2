// `gitsync partition produce|consume`: the PartitionSync engines once (or in a loop), as a
// drop-in for the old git-partition-sync CronJobs: the same environment variables, the same
// -dry-run and -run-once flags, the same desired-state file. Exit 0 when every repository is
// in sync, 1 when one failed, 2 on a configuration error.

import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { z } from "zod";
import { consume, produce, type ProducerRepo, type RepoOutcome } from "../engines/partition.js";
import type { GitCredentials } from "../git/auth.js";
import { WorkDirs } from "../git/workdir.js";
import { Bucket } from "../s3/bucket.js";
import { sleep } from "../util/backoff.js";
import { parseDuration } from "../util/duration.js";
import { errorText } from "../util/log.js";
import { fieldPath } from "../util/fields.js";
import { parseGitUrl, repoUnder } from "../util/giturl.js";
import type { ProgressSink } from "../util/progress.js";
import { commandProgress } from "./progress.js";
import { commandGitCredentials, SSH_FLAGS } from "./git-credentials.js";
import { commandS3Credentials, halfKeyPair } from "./s3-credentials.js";
import { registerSecret } from "../util/redact.js";
import { assertEd25519Key, assertIdentity, assertRecipient } from "../partition/crypto.js";

export const PARTITION_USAGE = `Usage: gitsync partition produce|consume [options]

Both read the old git-partition-sync environment:
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_S3_BUCKET   the bucket; without keys, the AWS SDK's
                                                                       default chain (AWS_SESSION_TOKEN, web identity:
                                                                       AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, STS at
                                                                       AWS_ENDPOINT_URL_STS; container credentials,
                                                                       profiles, instance metadata)
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY                                    proxies for S3, STS and git (lower case too)
  AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL                              an S3 endpoint other than AWS (e.g. MinIO)
  GITLAB_BASE_URL, GITLAB_USERNAME, GITLAB_TOKEN                       the source (produce) or destination (consume) server
  GIT_SSH_KEY_FILE (--ssh-key), GIT_SSH_KEY_PASSPHRASE,
  GIT_KNOWN_HOSTS (--known-hosts)                                      for a GITLAB_BASE_URL of ssh://user@host or user@host:
  WORKDIR                                                              scratch space (default: the system's temporary folder)
  RECONCILE_SLEEP_TIME                                                 a Go duration between runs when not run once (default 5m)
  DRY_RUN, RUN_ONCE                                                    or the flags -dry-run and -run-once[=false] (run once by default)
produce also: PUBLIC_KEY (age recipients, comma-separated), and
  --desired-state FILE [DESIRED_STATE_FILE]   apps_v1[].codeComponents[].gitlabSync{sourceProject,destinationProject}
  --format Tarball|Bundle|Both                default Tarball (the old consumer reads only Tarball)
  --full-every N                              Bundle: a full object after N bundles (default 50)
  --signing-key FILE [SIGNING_KEY_FILE]       an Ed25519 private key (PEM): objects are signed
consume also: PRIVATE_KEY (AGE-SECRET-KEY-1...), INTERNAL_GIT_CA_PATH, and
  --push Force|FastForward                    default FastForward: a destination branch is never rewritten
  --verify-key FILE                           a trusted Ed25519 public key (PEM), repeatable: unsigned objects are refused
Options: --prefix P (a key prefix in the bucket), --insecure (plain HTTP to the endpoint),
  --quiet (no progress line: on stderr, redrawn on a terminal, otherwise a plain line every 5 s).
Exit codes: 0 all in sync, 1 a repository failed, 2 configuration error.
`;

const OPTIONS = {
  "dry-run": { type: "boolean" },
  "run-once": { type: "boolean" },
  "desired-state": { type: "string" },
  format: { type: "string", default: "Tarball" },
  "full-every": { type: "string", default: "50" },
  "signing-key": { type: "string" },
  push: { type: "string", default: "FastForward" },
  "verify-key": { type: "string", multiple: true },
  prefix: { type: "string", default: "" },
  insecure: { type: "boolean", default: false },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  ...SSH_FLAGS,
} as const;

class ConfigError extends Error {}

/** Go's flag package takes -flag and -flag=value: so do we, for the old CronJobs' args. */
export function goFlags(argv: string[]): string[] {
  return argv.map((arg) => {
    const normalized = /^-[a-z]/.test(arg) ? `-${arg}` : arg;
    const match = /^--(dry-run|run-once)=(true|false|1|0)$/.exec(normalized);
    if (!match) return normalized;
    return /^(true|1)$/.test(match[2]!) ? `--${match[1]}` : `--no-${match[1]}`;
  });
}

const truthy = (value: string | undefined): boolean | undefined => (value === undefined || value === "" ? undefined : /^(1|true|yes)$/i.test(value));

/** A file the configuration names; a missing or unreadable one is a configuration error naming the option. */
function readConfigFile(file: string, option: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`${option}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Runs a check of the configuration; what it throws becomes a ConfigError (exit 2), prefixed with `what` when given. */
function configured(check: () => void, what?: string): void {
  try {
    check();
  } catch (err) {
    throw new ConfigError(`${what ? `${what}: ` : ""}${(err as Error).message}`, { cause: err });
  }
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new ConfigError(`${name} is not set`);
  return value;
}

/** The bucket; static keys when AWS_ACCESS_KEY_ID is set, else the AWS SDK's default chain, as the Go tool reads it. */
function bucketFrom(env: NodeJS.ProcessEnv, insecure: boolean): Bucket {
  const keys = { accessKey: env.AWS_ACCESS_KEY_ID, secretKey: env.AWS_SECRET_ACCESS_KEY };
  const half = halfKeyPair(keys, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
  if (half) throw new ConfigError(half);
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1";
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL ?? `https://s3.${region}.amazonaws.com`;
  return new Bucket(
    { endpoint, bucket: required(env, "AWS_S3_BUCKET"), region, insecure, forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL) },
    commandS3Credentials(keys, region, env),
  );
}

const sshFlags = (values: Values): { sshKey?: string; knownHosts?: string } => ({ sshKey: values["ssh-key"], knownHosts: values["known-hosts"] });

/** The git server of one side: GITLAB_BASE_URL (https://, ssh:// or user@host:), GITLAB_USERNAME and GITLAB_TOKEN, or an SSH key. */
function gitlab(env: NodeJS.ProcessEnv, ssh: { sshKey?: string; knownHosts?: string } = {}): { baseUrl: string; credentials?: GitCredentials } {
  const baseUrl = required(env, "GITLAB_BASE_URL");
  configured(() => parseGitUrl(repoUnder(baseUrl, "group/project.git")), "GITLAB_BASE_URL");
  let credentials: GitCredentials | undefined;
  configured(() => (credentials = commandGitCredentials(env, { ...ssh, username: env.GITLAB_USERNAME, token: env.GITLAB_TOKEN })));
  return { baseUrl: /:$/.test(baseUrl) && !baseUrl.includes("://") ? baseUrl : baseUrl.replace(/\/+$/, ""), credentials };
}

const project = z.object({ name: z.string().min(1), group: z.string().min(1), branch: z.string().min(1) });
const desiredState = z.object({
  apps_v1: z
    .array(
      z.object({
        codeComponents: z.array(z.object({ gitlabSync: z.object({ sourceProject: project, destinationProject: project }).nullish() }).nullable()).nullish(),
      }),
    )
    .nullish(),
});

/** The old producer's desired-state query result: apps_v1[].codeComponents[].gitlabSync. */
export function reposFromDesiredState(text: string, file: string, server: ReturnType<typeof gitlab>): ProducerRepo[] {
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(`${file}: invalid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const parsed = desiredState.safeParse(doc ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${file}: ${issue ? fieldPath("", issue.path).replace(/^\./, "") : ""}: ${issue?.message ?? "invalid"}`);
  }
  const repos: ProducerRepo[] = [];
  for (const app of parsed.data.apps_v1 ?? []) {
    for (const component of app.codeComponents ?? []) {
      const sync = component?.gitlabSync;
      if (!sync) continue;
      const { sourceProject: src, destinationProject: dst } = sync;
      repos.push({
        source: { url: repoUnder(server.baseUrl, `${src.group}/${src.name}.git`), branch: src.branch, credentials: server.credentials },
        destination: { group: dst.group, project: dst.name, branch: dst.branch },
      });
    }
  }
  return repos;
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; allowNegative: true }>>["values"];

/** One run's place and settings: its temporary folder, the kept mirrors, dry run, and where progress goes. */
interface Run {
  workDir: string;
  dryRun: boolean;
  mirrors: WorkDirs;
  progress: ProgressSink;
}

async function runProduce(values: Values, env: NodeJS.ProcessEnv, { workDir, dryRun, mirrors, progress }: Run): Promise<RepoOutcome[]> {
  const file = values["desired-state"] ?? env.DESIRED_STATE_FILE;
  if (!file) throw new ConfigError("--desired-state FILE (or DESIRED_STATE_FILE) is required");
  const repos = reposFromDesiredState(readConfigFile(file, "--desired-state"), file, gitlab(env, sshFlags(values)));
  const recipients = required(env, "PUBLIC_KEY")
    .split(",")
    .map((r) => r.trim())
    .filter(Boolean);
  if (!recipients.length) throw new ConfigError("PUBLIC_KEY holds no age recipient");
  recipients.forEach((r, i) => configured(() => assertRecipient(r, `PUBLIC_KEY[${i}]`)));
  const keyFile = values["signing-key"] ?? env.SIGNING_KEY_FILE;
  const signingKey = keyFile ? readConfigFile(keyFile, "--signing-key") : undefined;
  if (signingKey) configured(() => assertEd25519Key(signingKey, "private", keyFile!));
  const format = values.format as "Tarball" | "Bundle" | "Both";
  if (!["Tarball", "Bundle", "Both"].includes(format)) throw new ConfigError(`--format must be Tarball, Bundle or Both, not ${format}`);
  const fullEvery = Number(values["full-every"]);
  if (!Number.isInteger(fullEvery) || fullEvery < 1) throw new ConfigError(`--full-every must be a whole number of at least 1, not "${values["full-every"]}"`);
  const bucket = bucketFrom(env, values.insecure ?? false);
  try {
    const result = await produce({
      bucket,
      prefix: values.prefix ?? "",
      repos,
      recipients,
      signingKey,
      format,
      fullEvery,
      workDir,
      dryRun,
      mirrors,
      progress,
    });
    return result.repos;
  } finally {
    bucket.close();
  }
}

async function runConsume(values: Values, env: NodeJS.ProcessEnv, { workDir, dryRun, progress }: Run): Promise<RepoOutcome[]> {
  const identity = required(env, "PRIVATE_KEY").trim();
  registerSecret(identity);
  configured(() => assertIdentity(identity, "PRIVATE_KEY"));
  const server = gitlab(env, sshFlags(values));
  const caPath = env.INTERNAL_GIT_CA_PATH;
  const credentials = caPath ? { ...server.credentials, caCert: readConfigFile(caPath, "INTERNAL_GIT_CA_PATH") } : server.credentials;
  const push = values.push as "Force" | "FastForward";
  if (push !== "Force" && push !== "FastForward") throw new ConfigError(`--push must be Force or FastForward, not ${String(push)}`);
  const verify = (values["verify-key"] ?? []).map((f) => {
    const key = readConfigFile(f, "--verify-key");
    configured(() => assertEd25519Key(key, "public", f));
    return key;
  });
  const bucket = bucketFrom(env, values.insecure ?? false);
  try {
    const result = await consume({
      bucket,
      prefix: values.prefix ?? "",
      identities: [identity],
      verify,
      destination: { baseUrl: server.baseUrl, credentials },
      push,
      workDir,
      dryRun,
      progress,
    });
    for (const entry of result.unreadable) process.stderr.write(`skipped ${entry} (not a partition-sync object key)\n`);
    return result.repos;
  } finally {
    bucket.close();
  }
}

function print(outcomes: RepoOutcome[]): boolean {
  for (const o of outcomes) {
    const what = o.error
      ? `FAILED (${o.error.stage}): ${o.error.message}`
      : o.changed
        ? `${o.commit?.slice(0, 12)} (${o.format}, ${o.bytes} bytes)`
        : `in sync at ${o.commit?.slice(0, 12) ?? "-"}`;
    process.stdout.write(`${o.destination}\t${what}\n`);
  }
  return outcomes.every((o) => !o.error);
}

export async function runPartition(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = argv;
  try {
    const { values } = parseArgs({ args: goFlags(rest), options: OPTIONS, allowPositionals: true, allowNegative: true });
    if (values.help || !command || command === "--help" || command === "-h") {
      process.stdout.write(PARTITION_USAGE);
      return 0;
    }
    if (command !== "produce" && command !== "consume") throw new ConfigError(`unknown command "${command}"`);
    return await loop(command, values, env);
  } catch (err) {
    process.stderr.write(`gitsync partition: ${errorText(err)}\n`);
    return err instanceof ConfigError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1;
  }
}

async function loop(command: "produce" | "consume", values: Values, env: NodeJS.ProcessEnv): Promise<number> {
  const dryRun = values["dry-run"] ?? truthy(env.DRY_RUN) ?? false;
  const runOnce = values["run-once"] ?? truthy(env.RUN_ONCE) ?? true;
  let sleepMs = 0;
  configured(() => (sleepMs = parseDuration(env.RECONCILE_SLEEP_TIME ?? "5m")), "RECONCILE_SLEEP_TIME");
  // Our own folder inside WORKDIR: swept at start (what a killed run left), each run in a temporary folder removed after it.
  const workDirs = new WorkDirs(path.join(path.resolve(env.WORKDIR ?? os.tmpdir()), "gitsync-partition"));
  await workDirs.sweep();
  for (;;) {
    const progress = commandProgress({ quiet: values.quiet });
    const outcomes = await workDirs
      .withTemp(command, (workDir) => {
        const run = { workDir, dryRun, mirrors: workDirs, progress: progress.sink };
        return command === "produce" ? runProduce(values, env, run) : runConsume(values, env, run);
      })
      .finally(() => progress.stop());
    const ok = print(outcomes);
    if (runOnce) return ok ? 0 : 1;
    await sleep(sleepMs);
  }
}
