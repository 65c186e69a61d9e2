// The old backup CronJob, as a peer for bench/backup.ts: delete the work directory,
// download the whole bucket with @aws-sdk/client-s3, clone the repo, copy the files over
// (deletions are never propagated), then native git add -A, commit, push.

import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { mapLimit } from "../src/util/pool.js";

const [endpoint, bucket, accessKey, secretKey, repoUrl, auth, work] = process.argv.slice(2) as [string, string, string, string, string, string, string];
rmSync(work, { recursive: true, force: true });
const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
const keys: string[] = [];
let token: string | undefined;
do {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "clusterbackup/", ContinuationToken: token }));
  keys.push(...(page.Contents ?? []).map((o) => o.Key as string));
  token = page.IsTruncated ? page.NextContinuationToken : undefined;
} while (token);
mkdirSync(work, { recursive: true });
execFileSync("git", ["-c", `http.extraHeader=${auth}`, "clone", "--quiet", repoUrl, path.join(work, "repo")], { stdio: "ignore" });
await mapLimit(keys, 10, async (key) => {
  const body = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body?.transformToByteArray();
  const target = path.join(work, "repo", key);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, body ?? new Uint8Array());
});
s3.destroy();
const repo = path.join(work, "repo");
execFileSync("git", ["add", "-A"], { cwd: repo });
try {
  execFileSync("git", ["-c", "user.name=backup", "-c", "user.email=backup@example.com", "commit", "--quiet", "-m", "backup"], { cwd: repo, stdio: "ignore" });
  execFileSync("git", ["-c", `http.extraHeader=${auth}`, "push", "--quiet", "origin", "HEAD:main"], { cwd: repo, stdio: "ignore" });
} catch {
  // Nothing to commit: the old job pushed nothing either.
}
