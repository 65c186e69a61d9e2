import assert from "node:assert/strict";
import { resolveBackupCommand, type BackupCommand } from "../../src/cli/backup.js";

const CRONJOB_ENV = {
  MINIO_ENDPOINT: "minio:9000",
  MINIO_ACCESS_KEY: "access",
  MINIO_SECRET_KEY: "secret",
  MINIO_BUCKET: "backups",
  GIT_REPOSITORY: "https://git.example.com/ops/backups.git",
  GIT_BRANCH: "archive",
  GIT_USERNAME: "backup-bot",
  GIT_EMAIL: "bot@example.com",
  GIT_TOKEN: "t0ken",
  RETRY_ATTEMPTS: "5",
  RETRY_DELAY: "10",
};

function options(command: BackupCommand): Extract<BackupCommand, { action: "sync" }>["options"] {
  if (command.action !== "sync") assert.fail(`expected a sync, got ${JSON.stringify(command)}`);
  return command.options;
}

describe("gitsync backup sync options (flags, then the old CronJob's environment)", () => {
  it("takes the whole configuration from the CronJob's environment", () => {
    const o = options(resolveBackupCommand(["sync"], CRONJOB_ENV));
    assert.deepEqual(o.bucket, { endpoint: "minio:9000", bucket: "backups", insecure: true });
    assert.deepEqual(o.repo, {
      url: "https://git.example.com/ops/backups.git",
      branch: "archive",
      username: "backup-bot",
      email: "bot@example.com",
      token: "t0ken",
    });
    assert.deepEqual(o.retry, { attempts: 5, delayMs: 10_000 });
    assert.equal(o.plan.prefix, "clusterbackup/");
  });

  it("lets a flag win over the environment", () => {
    const o = options(resolveBackupCommand(["sync", "--bucket", "other", "--branch", "main", "--retry-delay", "2s", "--no-prune"], CRONJOB_ENV));
    assert.equal(o.bucket.bucket, "other");
    assert.equal(o.repo?.branch, "main");
    assert.equal(o.retry.delayMs, 2000);
    assert.equal(o.plan.prune, false);
  });

  it("mirrors into WORK_DIR without a repository", () => {
    const o = options(resolveBackupCommand(["sync"], { ...CRONJOB_ENV, GIT_REPOSITORY: undefined, WORK_DIR: "/backups" }));
    assert.equal(o.repo, undefined);
    assert.equal(o.workDir, "/backups");
  });

  it("takes static keys first, with AWS_SESSION_TOKEN, and the AWS SDK's default chain when no keys are given", () => {
    const withToken = options(resolveBackupCommand(["sync"], { ...CRONJOB_ENV, AWS_SESSION_TOKEN: "session-token-1" }));
    assert.deepEqual(withToken.credentials, { accessKey: "access", secretKey: CRONJOB_ENV.MINIO_SECRET_KEY, sessionToken: "session-token-1" });
    const awsKeys = options(
      resolveBackupCommand(["sync"], {
        ...CRONJOB_ENV,
        MINIO_ACCESS_KEY: undefined,
        MINIO_SECRET_KEY: undefined,
        AWS_ACCESS_KEY_ID: "a",
        AWS_SECRET_ACCESS_KEY: "s-key",
      }),
    );
    assert.equal(awsKeys.credentials.accessKey, "a");
    const chain = options(resolveBackupCommand(["sync"], { ...CRONJOB_ENV, MINIO_ACCESS_KEY: undefined, MINIO_SECRET_KEY: undefined }));
    assert.equal(chain.credentials.accessKey, undefined);
    assert.equal(typeof chain.credentials.provider, "function");
  });

  it("uses HTTPS when MINIO_USE_SSL is true", () => {
    assert.equal(options(resolveBackupCommand(["sync"], { ...CRONJOB_ENV, MINIO_USE_SSL: "true" })).bucket.insecure, false);
  });

  const errors: [string, string[], Record<string, string | undefined>, RegExp][] = [
    ["half a key pair", ["sync"], { ...CRONJOB_ENV, MINIO_SECRET_KEY: undefined }, /the secret key \(--secret-key, MINIO_SECRET_KEY\) is not set/],
    ["no endpoint", ["sync"], { ...CRONJOB_ENV, MINIO_ENDPOINT: undefined }, /S3 endpoint is required/],
    ["neither a repository nor a folder", ["sync"], { ...CRONJOB_ENV, GIT_REPOSITORY: undefined }, /GIT_REPOSITORY .* or WORK_DIR/],
    ["a retry delay that is no duration", ["sync"], { ...CRONJOB_ENV, RETRY_DELAY: "soon" }, /RETRY_DELAY/],
    ["a concurrency that is no number", ["sync", "--concurrency", "many"], CRONJOB_ENV, /--concurrency must be a whole number, not "many"/],
    ["an unknown flag", ["sync", "--bukket", "x"], CRONJOB_ENV, /bukket/],
    ["an endpoint that is no URL", ["sync"], { ...CRONJOB_ENV, MINIO_ENDPOINT: "::::" }, /^MINIO_ENDPOINT: "::::" is not an S3 endpoint/],
    ["an endpoint of another scheme", ["sync", "--endpoint", "ftp://minio:21"], CRONJOB_ENV, /^--endpoint: .* is http:\/\/ or https:\/\//],
    ["a retry count that is no number", ["sync"], { ...CRONJOB_ENV, RETRY_ATTEMPTS: "often" }, /RETRY_ATTEMPTS must be a whole number/],
    ["an unknown subcommand", ["restore"], CRONJOB_ENV, /unknown subcommand "restore"/],
  ];
  for (const [name, argv, env, message] of errors) {
    it(`refuses ${name} with a message that says what to set`, () => {
      const command = resolveBackupCommand(argv, env);
      assert.equal(command.action, "usage-error");
      assert.match((command as { message: string }).message, message);
    });
  }

  it("answers --health-check and --help without configuration", () => {
    assert.equal(resolveBackupCommand(["sync", "--health-check"], {}).action, "health-check");
    assert.equal(resolveBackupCommand(["--help"], {}).action, "help");
  });
});
