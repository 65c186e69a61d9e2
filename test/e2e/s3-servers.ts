// The S3 servers the S3-facing suites run against: the environment's versitygw, and MinIO, the
// server the backup job's users run, started for the suite in a podman container through
// testcontainers (hack/env/minio.ts) and removed when the suite ends; the environment removes
// any container left when it stops, whichever way.

import { S3Client } from "@aws-sdk/client-s3";
import type { StartedTestContainer } from "testcontainers";
import { startMinio } from "../../hack/env/minio.js";
import { env } from "./setup.js";

export interface S3Server {
  readonly name: "versitygw" | "MinIO";
  readonly endpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
}

export const S3_SERVER_NAMES = ["versitygw", "MinIO"] as const;

/** An SDK client with admin rights on the server. */
export function s3Client(server: S3Server): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
  });
}

function podmanContainers(): Promise<string[]> {
  const podman = env().podman;
  if (!podman) throw new Error("the environment was started without podman");
  return podman.containers();
}

/**
 * One `describe` per S3 server, each holding `body`. `server()` is the suite's server once its
 * first `before` hook has run (MinIO's container starts there and is removed in `after`).
 */
export function eachS3Server(title: (name: string) => string, body: (server: () => S3Server, name: S3Server["name"]) => void): void {
  for (const name of S3_SERVER_NAMES) {
    describe(title(name), function () {
      let current: S3Server | undefined;
      let container: StartedTestContainer | undefined;
      before(async function () {
        this.timeout(120_000);
        if (name === "versitygw") current = { name, ...env().s3 };
        else {
          const minio = await startMinio(env().minioImage);
          ({ container } = minio);
          current = { name, endpoint: minio.endpoint, accessKey: minio.accessKey, secretKey: minio.secretKey };
          const listed = await podmanContainers();
          if (!listed.includes(minio.containerName)) throw new Error(`podman does not list the MinIO container: ${listed.join(", ")}`);
        }
      });
      after(async () => {
        if (!container) return;
        const containerName = container.getName().replace(/^\//, "");
        await container.stop({ timeout: 1_000 });
        const listed = await podmanContainers();
        if (listed.includes(containerName)) throw new Error(`the MinIO container ${containerName} is still there after the suite: ${listed.join(", ")}`);
      });
      body(() => {
        if (!current) throw new Error(`the ${name} server has not started`);
        return current;
      }, name);
    });
  }
}
