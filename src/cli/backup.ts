// `gitsync backup sync`: one ClusterBackupSync run, configured by flags or by the
// environment existing backup CronJobs already set (MINIO_*, GIT_*, WORK_DIR, RETRY_*), so a
// team swaps its CronJob's command and keeps its configuration.

import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { PlanOptions } from "../backup/plan.js";
import { runBackupSync, runBackupToDirectory, type SyncResult } from "../engines/backup.js";
import { GitError, GitRepository } from "../git/repo.js";
import { WorkDirs } from "../git/workdir.js";
import { sleep } from "../util/backoff.js";
import { parseDuration } from "../util/duration.js";
import { errorText, rootLogger } from "../util/log.js";
import { registerSecret, safeUrl } from "../util/redact.js";
import { isSshUrl, parseGitUrl } from "../util/giturl.js";
import { assertRecipient } from "../partition/crypto.js";
import { s3EndpointUrl } from "../util/url.js";
import { commandGitCredentials, CredentialsFileError, SSH_FLAGS } from "./git-credentials.js";
import { Bucket, type S3Credentials } from "../s3/bucket.js";
import { commandS3Credentials, halfKeyPair } from "./s3-credentials.js";
import type { ProgressSink } from "../util/progress.js";
import { commandProgress } from "./progress.js";

export const BACKUP_USAGE = `Usage: gitsync backup sync [options]

Mirrors cluster backups from an S3 bucket into a git repository, once: only changed objects
are downloaded, deletions are propagated (with guards), and the push is one whole commit.

Options (environment variable in brackets):
  --endpoint HOST:PORT|URL   S3 endpoint [MINIO_ENDPOINT]
  --access-key, --secret-key credentials [MINIO_ACCESS_KEY, MINIO_SECRET_KEY]; without them the
                             AWS SDK's default chain: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
                             (+ AWS_SESSION_TOKEN), web identity (AWS_WEB_IDENTITY_TOKEN_FILE +
                             AWS_ROLE_ARN, STS at AWS_ENDPOINT_URL_STS), container credentials,
                             profiles (AWS_PROFILE), instance metadata
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY   proxies for S3, STS and git (lower case too)
  --bucket NAME              default cluster-backups [MINIO_BUCKET]
  --ssl                      use HTTPS for a bare host:port [MINIO_USE_SSL=true]
  --prefix P                 default clusterbackup/
  --repo URL                 destination [GIT_REPOSITORY]
  --branch NAME              default main [GIT_BRANCH]
  --username, --email        commit author and git user [GIT_USERNAME, GIT_EMAIL]
  --token TOKEN              git password or token [GIT_TOKEN]
  --ssh-key FILE             SSH private key for an ssh:// or user@host:path repository
                             [GIT_SSH_KEY_FILE, or SSH_KEY_PATH as the old job; default /etc/git-secrets/ssh-private-key
                             when it exists; passphrase in GIT_SSH_KEY_PASSPHRASE]
  --known-hosts FILE         the SSH server's host keys [GIT_KNOWN_HOSTS, default ~/.ssh/known_hosts]; always checked
  --path DIR                 folder in the repository (default the root)
  --include GLOB, --exclude GLOB   select keys (repeatable)
  --no-prune                 never delete files from the repository
  --max-delete-percent N     refuse to delete more than N% of the files (default 50)
  --encrypt-recipient KEY, --encrypt-include GLOB   commit matching files as <path>.age (repeatable)
  --concurrency N            parallel downloads (default 10)
  --dry-run                  compute and report; no push
  --work-dir DIR             clone folder; without a repository, the folder to mirror into [WORK_DIR]
  --retry-attempts N, --retry-delay DUR   [RETRY_ATTEMPTS (default 3), RETRY_DELAY (default 5s)]
  --quiet                    no progress line (it goes to stderr: redrawn on a terminal,
                             otherwise a plain line every 5 s)
  --health-check             print OK and exit
`;

/** Everything one run needs, resolved from flags first, then the old CronJob's environment. */
export interface BackupOptions {
  bucket: { endpoint: string; bucket: string; insecure: boolean };
  credentials: S3Credentials;
  /** The git destination; without it, a download-only mirror into workDir. */
  repo?: { url: string; branch: string; username: string; email: string; token?: string; sshKey?: string; knownHosts?: string };
  workDir?: string;
  plan: PlanOptions;
  recipients: string[];
  concurrency: number;
  dryRun: boolean;
  retry: { attempts: number; delayMs: number };
  quiet: boolean;
}

export type BackupCommand = { action: "help" | "health-check" } | { action: "sync"; options: BackupOptions } | { action: "usage-error"; message: string };

/** Flags and environment in, the command to run out. Pure: no I/O, unit-tested. */
export function resolveBackupCommand(argv: string[], env: NodeJS.ProcessEnv): BackupCommand {
  const [sub, ...rest] = argv;
  if (sub === "--help" || sub === "-h") return { action: "help" };
  if (sub !== "sync") return { action: "usage-error", message: sub === undefined ? "name a subcommand: sync" : `unknown subcommand "${sub}"` };
  let values: ReturnType<typeof parse>;
  try {
    values = parse(rest);
  } catch (err) {
    return { action: "usage-error", message: (err as Error).message };
  }
  if (values["health-check"]) return { action: "health-check" };
  if (values.help) return { action: "help" };
  try {
    return { action: "sync", options: resolveOptions(values, env) };
  } catch (err) {
    if (err instanceof UsageError) return { action: "usage-error", message: err.message };
    throw err;
  }
}

class UsageError extends Error {}

type Flags = ReturnType<typeof parse>;

/** The endpoint and credentials: the flags, then the old CronJob's MINIO_* variables, then AWS_* keys, then the AWS SDK's chain. */
function s3Access(
  values: Flags,
  env: NodeJS.ProcessEnv,
  pick: (flag: keyof Flags, variable?: string) => string | undefined,
): { endpoint: string; credentials: S3Credentials } {
  const endpoint = pick("endpoint", "MINIO_ENDPOINT");
  if (!endpoint) throw new UsageError("the S3 endpoint is required (--endpoint or MINIO_ENDPOINT)");
  try {
    s3EndpointUrl(endpoint);
  } catch (err) {
    throw new UsageError(`${values.endpoint ? "--endpoint" : "MINIO_ENDPOINT"}: ${(err as Error).message}`);
  }
  const keys = {
    accessKey: pick("access-key", "MINIO_ACCESS_KEY") ?? env.AWS_ACCESS_KEY_ID,
    secretKey: pick("secret-key", "MINIO_SECRET_KEY") ?? env.AWS_SECRET_ACCESS_KEY,
  };
  const half = halfKeyPair(keys, ["the access key (--access-key, MINIO_ACCESS_KEY)", "the secret key (--secret-key, MINIO_SECRET_KEY)"]);
  if (half) throw new UsageError(half);
  return { endpoint, credentials: commandS3Credentials(keys, env.AWS_REGION ?? "us-east-1", env) };
}

function resolveOptions(values: Flags, env: NodeJS.ProcessEnv): BackupOptions {
  // A flag wins over the old CronJob's variable, which wins over the default.
  const pick = (flag: keyof Flags, variable?: string): string | undefined => (values[flag] as string | undefined) ?? (variable ? env[variable] : undefined);
  const pickOr = (flag: keyof Flags, variable: string | undefined, fallback: string): string => pick(flag, variable) ?? fallback;
  const { endpoint, credentials } = s3Access(values, env, pick);
  const repoUrl = pick("repo", "GIT_REPOSITORY");
  if (repoUrl) {
    try {
      parseGitUrl(repoUrl);
    } catch (err) {
      throw new UsageError(`${values.repo ? "--repo" : "GIT_REPOSITORY"}: ${(err as Error).message}`);
    }
  }
  const workDir = pick("work-dir", "WORK_DIR");
  if (!repoUrl && !workDir) throw new UsageError("set GIT_REPOSITORY (or --repo), or WORK_DIR alone for a download-only mirror");
  const username = pickOr("username", "GIT_USERNAME", "gitsync");
  const ssl = values.ssl ?? /^(1|true|yes)$/i.test(env.MINIO_USE_SSL ?? "");
  return {
    bucket: { endpoint, bucket: pickOr("bucket", "MINIO_BUCKET", "cluster-backups"), insecure: !ssl },
    credentials,
    repo: repoUrl
      ? {
          url: repoUrl,
          branch: pickOr("branch", "GIT_BRANCH", "main"),
          username,
          email: pickOr("email", "GIT_EMAIL", "gitsync@localhost"),
          token: pick("token", "GIT_TOKEN"),
          ...sshFiles(values, env, repoUrl),
        }
      : undefined,
    workDir,
    plan: {
      prefix: pickOr("prefix", undefined, "clusterbackup/"),
      destPath: pickOr("path", undefined, ""),
      include: values.include ?? [],
      exclude: values.exclude ?? [],
      prune: !values["no-prune"],
      maxDeletePercent: percent("--max-delete-percent", pickOr("max-delete-percent", undefined, "50")),
      encrypt: values["encrypt-include"] ?? [],
    },
    recipients: recipients(values["encrypt-recipient"] ?? []),
    concurrency: wholeNumber("--concurrency", pickOr("concurrency", undefined, "10")),
    dryRun: values["dry-run"] ?? false,
    quiet: values.quiet ?? false,
    retry: {
      attempts: wholeNumber("RETRY_ATTEMPTS", pickOr("retry-attempts", "RETRY_ATTEMPTS", "3")),
      delayMs: retryDelay(pickOr("retry-delay", "RETRY_DELAY", "5s")),
    },
  };
}

/** The old job's SSH_KEY_PATH (default /etc/git-secrets/ssh-private-key, where its CronJobs mount the key) for an SSH repository. */
const OLD_JOB_KEY = "/etc/git-secrets/ssh-private-key";

function sshFiles(values: Flags, env: NodeJS.ProcessEnv, repoUrl: string): { sshKey?: string; knownHosts?: string } {
  if (!isSshUrl(repoUrl)) return {};
  const sshKey = values["ssh-key"] ?? env.GIT_SSH_KEY_FILE ?? env.SSH_KEY_PATH ?? (existsSync(OLD_JOB_KEY) ? OLD_JOB_KEY : undefined);
  if (!sshKey) throw new UsageError(`${repoUrl} is an SSH repository: set SSH_KEY_PATH or GIT_SSH_KEY_FILE (or --ssh-key) to its private key`);
  return { sshKey, knownHosts: values["known-hosts"] ?? env.GIT_KNOWN_HOSTS };
}

function percent(name: string, text: string): number {
  const n = wholeNumber(name, text);
  if (n > 100) throw new UsageError(`${name} is a percentage from 0 to 100, not ${n}`);
  return n;
}

/** --encrypt-recipient values, each checked to be an age recipient before anything is downloaded. */
function recipients(values: string[]): string[] {
  values.forEach((r, i) => {
    try {
      assertRecipient(r, `--encrypt-recipient[${i}]`);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });
  return values;
}

function wholeNumber(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a whole number, not "${text}"`);
  return n;
}

export async function runBackup(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const command = resolveBackupCommand(argv, env);
  switch (command.action) {
    case "help":
      return (process.stdout.write(BACKUP_USAGE), 0);
    case "health-check":
      return (process.stdout.write("OK\n"), 0);
    case "usage-error":
      return usage(command.message);
    case "sync":
      return syncWithRetries(command.options);
  }
}

/** Runs the sync, retrying RETRY_ATTEMPTS times; 0 on success, 1 when every attempt failed. */
async function syncWithRetries(options: BackupOptions): Promise<number> {
  const log = rootLogger;
  registerSecret(options.credentials.secretKey);
  registerSecret(options.repo?.token);
  const bucket = new Bucket(options.bucket, options.credentials);
  const destination = options.repo ? safeUrl(options.repo.url) : options.workDir;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const progress = commandProgress({ quiet: options.quiet });
        const result = await syncOnce(options, bucket, progress.sink).finally(() => progress.stop());
        const changed = result.added + result.modified + result.deleted > 0;
        const message = options.repo
          ? result.commit
            ? "Pushed backup commit"
            : "Backup already up to date"
          : changed
            ? "Wrote backup files"
            : "Backup already up to date";
        const { skipped, ...summary } = result;
        log.info(message, { destination, ...summary, skipped: skipped.length });
        if (skipped.length > 0) log.warn(`Skipped ${skipped.length} bucket keys that cannot be files`, { keys: skipped });
        if (result.pruneRefused) log.warn("Refused to prune", { reason: result.pruneRefused });
        return 0;
      } catch (err) {
        const final = finalFailure(err);
        log.error("Backup sync failed", { attempt, attempts: options.retry.attempts, error: errorText(err), ...(final ? { retried: false } : {}) });
        if (final) return final;
        if (attempt >= options.retry.attempts) return 1;
        await sleep(options.retry.delayMs);
      }
    }
  } finally {
    bucket.close();
  }
}

/** A failure no retry can mend: a configuration error exits 2, a host key that does not match exits 1, at once. */
function finalFailure(err: unknown): number | undefined {
  if (err instanceof CredentialsFileError || (err instanceof GitError && err.kind === "invalid")) return 2;
  if (err instanceof GitError && err.kind === "host-key") return 1;
  return undefined;
}

function syncOnce(options: BackupOptions, bucket: Bucket, progress: ProgressSink): Promise<SyncResult> {
  const common = { bucket, options: options.plan, recipients: options.recipients, concurrency: options.concurrency, dryRun: options.dryRun, progress };
  const { repo } = options;
  if (!repo) return runBackupToDirectory({ ...common, dir: options.workDir as string });
  const work = new WorkDirs(options.workDir ?? path.join(os.tmpdir(), "gitsync-backup"));
  const credentials = repo.sshKey
    ? commandGitCredentials(process.env, { sshKey: repo.sshKey, knownHosts: repo.knownHosts })
    : { username: repo.username, password: repo.token };
  return runBackupSync({
    ...common,
    repo: new GitRepository(repo.url, work.cloneDir(repo.url), credentials),
    branch: repo.branch,
    author: { name: repo.username, email: repo.email },
  });
}

function parse(args: string[]) {
  return parseArgs({ args, options: OPTIONS }).values;
}

const OPTIONS = {
  endpoint: { type: "string" },
  "access-key": { type: "string" },
  "secret-key": { type: "string" },
  bucket: { type: "string" },
  ssl: { type: "boolean" },
  prefix: { type: "string" },
  repo: { type: "string" },
  branch: { type: "string" },
  username: { type: "string" },
  email: { type: "string" },
  token: { type: "string" },
  path: { type: "string" },
  include: { type: "string", multiple: true },
  exclude: { type: "string", multiple: true },
  "no-prune": { type: "boolean" },
  "max-delete-percent": { type: "string" },
  "encrypt-recipient": { type: "string", multiple: true },
  "encrypt-include": { type: "string", multiple: true },
  concurrency: { type: "string" },
  "dry-run": { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  "work-dir": { type: "string" },
  "retry-attempts": { type: "string" },
  "retry-delay": { type: "string" },
  "health-check": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  ...SSH_FLAGS,
} as const;

/** RETRY_DELAY as the old CronJobs set it: seconds ("5") or a Go duration ("5s"). */
function retryDelay(text: string): number {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  try {
    return parseDuration(text);
  } catch (err) {
    throw new UsageError(`RETRY_DELAY: ${(err as Error).message}`);
  }
}

function usage(message: string): number {
  process.stderr.write(`gitsync backup sync: ${message}\n\n${BACKUP_USAGE}`);
  return 2;
}
