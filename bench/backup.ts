// ClusterBackupSync's engine (`gitsync backup sync`) against the old CronJob (bench/
// backup-peer.ts) on 10,000 objects (5 clusters × 20 namespaces × 100), served by versitygw
// (or MinIO with `--server minio`, in a podman container through testcontainers) and the git
// smart-HTTP server: a first sync, then a sync after 1% changed. Each side runs as its own
// process under GNU time (wall time, peak RSS); ratios are ours / peer. Ours runs with the Node.js
// options the chart gives the operator, where ClusterBackupSync runs this engine.

import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { parseArgs } from "node:util";
import { Environment } from "../hack/env/environment.js";
import { startMinio, type S3Endpoint } from "../hack/env/minio.js";
import { mapLimit } from "../src/util/pool.js";
import { operatorNodeOptions } from "./operator-node-options.js";

const CLUSTERS = 5;
const NAMESPACES = 20;
const PER_NAMESPACE = Number(process.env.BENCH_PER_NAMESPACE ?? 100);
const OPERATOR_NODE_OPTIONS = operatorNodeOptions();

const { values: options } = parseArgs({ options: { server: { type: "string", default: "versitygw" } } });
if (options.server !== "versitygw" && options.server !== "minio") throw new Error(`--server must be versitygw or minio, not ${options.server}`);
const env = new Environment({ podman: options.server === "minio" });
await env.start();
try {
  const server: S3Endpoint = options.server === "minio" ? await startMinio(env.minioImage) : env.s3;
  const s3 = new S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
  });
  const keys: string[] = [];
  for (let c = 0; c < CLUSTERS; c++)
    for (let n = 0; n < NAMESPACES; n++) for (let i = 0; i < PER_NAMESPACE; i++) keys.push(`clusterbackup/cluster-${c}/ns-${n}/configmaps/cm-${i}.yaml`);
  const body = (key: string, rev = 1): string =>
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${path.basename(key, ".yaml")}\n  annotations: {revision: "${rev}"}\ndata:\n  key: ${key}\n  padding: ${"x".repeat(300)}\n`;
  for (const bucket of ["ours", "peer"]) {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await putAll(
      s3,
      bucket,
      keys.map((k) => [k, body(k)]),
    );
    env.git.createRepo(`bench-${bucket}`);
  }

  const auth = `Authorization: Basic ${Buffer.from(`${env.git.username}:${env.git.password}`).toString("base64")}`;
  const oursWork = mkdtempSync(path.join(os.tmpdir(), "gitsync-bench-backup-"));
  const peerWork = path.join(mkdtempSync(path.join(os.tmpdir(), "gitsync-bench-peer-")), "work");
  const ours = (): Promise<Sample> =>
    measure(process.execPath, [...OPERATOR_NODE_OPTIONS, path.resolve(import.meta.dirname, "../src/main.js"), "backup", "sync", "--concurrency", "10"], {
      MINIO_ENDPOINT: server.endpoint,
      MINIO_ACCESS_KEY: server.accessKey,
      MINIO_SECRET_KEY: server.secretKey,
      MINIO_BUCKET: "ours",
      GIT_REPOSITORY: env.git.url("bench-ours"),
      GIT_USERNAME: env.git.username,
      GIT_TOKEN: env.git.password,
      WORK_DIR: oursWork,
      LOG_LEVEL: "warn",
    });
  const peer = (): Promise<Sample> =>
    measure(
      process.execPath,
      [
        path.resolve(import.meta.dirname, "backup-peer.js"),
        server.endpoint,
        "peer",
        server.accessKey,
        server.secretKey,
        env.git.url("bench-peer"),
        auth,
        peerWork,
      ],
      {},
    );

  const first = { ours: await ours(), peer: await peer() };
  // 1% changed: 60 modified, 20 added, 20 deleted.
  const changes = (bucket: string): Promise<void> =>
    Promise.all([
      putAll(
        s3,
        bucket,
        keys.slice(0, 60).map((k) => [k, body(k, 2)]),
      ),
      putAll(
        s3,
        bucket,
        Array.from({ length: 20 }, (_, i) => [`clusterbackup/cluster-0/ns-0/configmaps/new-${i}.yaml`, body(`new-${i}`)] as [string, string]),
      ),
      ...keys.slice(100, 120).map((Key) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }))),
    ]).then(() => undefined);
  await changes("ours");
  await changes("peer");
  const incremental = { ours: await ours(), peer: await peer() };
  s3.destroy();

  console.log(`\nClusterBackupSync engine vs the old CronJob (download all, git add -A, commit, push): ${keys.length} objects on ${options.server}`);
  console.log(`ours runs with the operator's Node.js options: ${OPERATOR_NODE_OPTIONS.join(" ") || "(none)"}\n`);
  console.log(
    `${"sync".padEnd(14)}${"ours s".padStart(9)}${"peer s".padStart(9)}${"speed-up".padStart(10)}${"ours RSS MiB".padStart(14)}${"peer RSS MiB".padStart(14)}${"RSS ratio".padStart(11)}`,
  );
  for (const [name, r] of [
    ["first", first],
    ["1% changed", incremental],
  ] as const) {
    console.log(
      `${name.padEnd(14)}${(r.ours.wallMs / 1000).toFixed(2).padStart(9)}${(r.peer.wallMs / 1000).toFixed(2).padStart(9)}${`${(r.peer.wallMs / r.ours.wallMs).toFixed(1)}x`.padStart(10)}${(r.ours.rssKiB / 1024).toFixed(1).padStart(14)}${(r.peer.rssKiB / 1024).toFixed(1).padStart(14)}${(r.ours.rssKiB / r.peer.rssKiB).toFixed(2).padStart(11)}`,
    );
  }
  console.log(`\nThe old job also never propagates deletions: after the 1% change its repo still holds ${20} deleted files.`);
} finally {
  await env.stop();
}

interface Sample {
  wallMs: number;
  rssKiB: number;
}

function measure(command: string, args: string[], extraEnv: Record<string, string>): Promise<Sample> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      "/usr/bin/time",
      ["-f", "%M", command, ...args],
      { env: { PATH: process.env.PATH, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 },
      (err, _stdout, stderr) => {
        if (err) return reject(new Error(`${command} ${args[0]} failed: ${stderr.slice(-2000)}`));
        resolve({ wallMs: performance.now() - start, rssKiB: Number(stderr.trim().split("\n").at(-1)) });
      },
    );
  });
}

async function putAll(s3: S3Client, bucket: string, objects: [string, string][]): Promise<void> {
  await mapLimit(objects, 32, ([Key, Body]) => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body })));
}
