// `gitsync backup sync`: one ClusterBackupSync run, configured by flags or by the
// environment existing backup CronJobs already set (MINIO_*, GIT_*, WORK_DIR, RETRY_*), so a
// team swaps its CronJob's command and keeps its configuration.

import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { runBackupSync, runBackupToDirectory } from "../backup/engine.js";
import { GitRepository } from "../git/repo.js";
import { WorkDirs } from "../git/workdir.js";
import { sleep } from "../runtime/backoff.js";
import { parseDuration } from "../runtime/duration.js";
import { errorText, rootLogger } from "../runtime/log.js";
import { registerSecret, safeUrl } from "../runtime/redact.js";
import { Bucket } from "../s3/bucket.js";

export const BACKUP_USAGE = `Usage: gitsync backup sync [options]

Mirrors cluster backups from an S3 bucket into a git repository, once: only changed objects
are downloaded, deletions are propagated (with guards), and the push is one whole commit.

Options (environment variable in brackets):
  --endpoint HOST:PORT|URL   S3 endpoint [MINIO_ENDPOINT]
  --access-key, --secret-key credentials [MINIO_ACCESS_KEY, MINIO_SECRET_KEY]
  --bucket NAME              default cluster-backups [MINIO_BUCKET]
  --ssl                      use HTTPS for a bare host:port [MINIO_USE_SSL=true]
  --prefix P                 default clusterbackup/
  --repo URL                 destination [GIT_REPOSITORY]
  --branch NAME              default main [GIT_BRANCH]
  --username, --email        commit author and git user [GIT_USERNAME, GIT_EMAIL]
  --token TOKEN              git password or token [GIT_TOKEN]
  --path DIR                 folder in the repository (default the root)
  --include GLOB, --exclude GLOB   select keys (repeatable)
  --no-prune                 never delete files from the repository
  --max-delete-percent N     refuse to delete more than N% of the files (default 50)
  --encrypt-recipient KEY, --encrypt-include GLOB   commit matching files as <path>.age (repeatable)
  --concurrency N            parallel downloads (default 10)
  --dry-run                  compute and report; no push
  --work-dir DIR             clone folder; without a repository, the folder to mirror into [WORK_DIR]
  --retry-attempts N, --retry-delay DUR   [RETRY_ATTEMPTS (default 3), RETRY_DELAY (default 5s)]
  --health-check             print OK and exit
`;

export async function runBackup(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "--help" || sub === "-h" || sub === undefined) return process.stdout.write(BACKUP_USAGE), sub === undefined ? 2 : 0;
  if (sub !== "sync") return usage(`unknown subcommand "${sub}"`);
  let values: ReturnType<typeof parse>;
  try {
    values = parse(rest);
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values["health-check"]) return process.stdout.write("OK\n"), 0;
  if (values.help) return process.stdout.write(BACKUP_USAGE), 0;

  const endpoint = values.endpoint ?? env.MINIO_ENDPOINT;
  const accessKey = values["access-key"] ?? env.MINIO_ACCESS_KEY;
  const secretKey = values["secret-key"] ?? env.MINIO_SECRET_KEY;
  const repoUrl = values.repo ?? env.GIT_REPOSITORY;
  if (!endpoint || !accessKey || !secretKey) return usage("the S3 endpoint and credentials are required (MINIO_ENDPOINT, MINIO_ACCESS_KEY, MINIO_SECRET_KEY)");
  registerSecret(secretKey);
  registerSecret(values.token ?? env.GIT_TOKEN);

  const log = rootLogger;
  const ssl = values.ssl ?? /^(1|true|yes)$/i.test(env.MINIO_USE_SSL ?? "");
  const bucket = new Bucket({ endpoint, bucket: values.bucket ?? env.MINIO_BUCKET ?? "cluster-backups", insecure: !ssl }, { accessKey, secretKey });
  const work = new WorkDirs(values["work-dir"] ?? env.WORK_DIR ?? path.join(os.tmpdir(), "gitsync-backup"));
  const username = values.username ?? env.GIT_USERNAME ?? "gitsync";
  const workDir = values["work-dir"] ?? env.WORK_DIR;
  if (!repoUrl && !workDir) return usage("set GIT_REPOSITORY (or --repo), or WORK_DIR alone for a download-only mirror");
  const attempts = Number(values["retry-attempts"] ?? env.RETRY_ATTEMPTS ?? 3);
  const delayMs = retryDelay(values["retry-delay"] ?? env.RETRY_DELAY ?? "5s");
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const common = {
          bucket,
          options: {
            prefix: values.prefix ?? "clusterbackup/",
            destPath: values.path ?? "",
            include: values.include ?? [],
            exclude: values.exclude ?? [],
            prune: !values["no-prune"],
            maxDeletePercent: Number(values["max-delete-percent"] ?? 50),
            encrypt: values["encrypt-include"] ?? [],
          },
          recipients: values["encrypt-recipient"] ?? [],
          concurrency: Number(values.concurrency ?? 10),
          dryRun: values["dry-run"] ?? false,
        };
        const result = repoUrl
          ? await runBackupSync({
              ...common,
              repo: new GitRepository(repoUrl, work.cloneDir(repoUrl), { username, password: values.token ?? env.GIT_TOKEN }),
              branch: values.branch ?? env.GIT_BRANCH ?? "main",
              author: { name: username, email: values.email ?? env.GIT_EMAIL ?? "gitsync@localhost" },
            })
          : await runBackupToDirectory({ ...common, dir: workDir as string });
        const changed = result.added + result.modified + result.deleted > 0;
        const message = repoUrl ? (result.commit ? "Pushed backup commit" : "Backup already up to date") : changed ? "Wrote backup files" : "Backup already up to date";
        log.info(message, { destination: repoUrl ? safeUrl(repoUrl) : workDir, ...result });
        if (result.pruneRefused) log.warn("Refused to prune", { reason: result.pruneRefused });
        return 0;
      } catch (err) {
        log.error("Backup sync failed", { attempt, attempts, error: errorText(err) });
        if (attempt >= attempts) return 1;
        await sleep(delayMs);
      }
    }
  } finally {
    bucket.close();
  }
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
  "work-dir": { type: "string" },
  "retry-attempts": { type: "string" },
  "retry-delay": { type: "string" },
  "health-check": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** RETRY_DELAY as the old CronJobs set it: seconds ("5") or a Go duration ("5s"). */
function retryDelay(text: string): number {
  return /^\d+$/.test(text) ? Number(text) * 1000 : parseDuration(text);
}

function usage(message: string): number {
  process.stderr.write(`gitsync backup sync: ${message}\n\n${BACKUP_USAGE}`);
  return 2;
}
