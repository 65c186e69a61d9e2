// MinIO, the S3 server the backup job's users run, started through testcontainers on the
// environment's podman from the image the environment built from hack/tools.sh's binary. The
// container shares the host's network (the node's pod bridge already holds podman's default
// subnet) and listens on loopback only.

import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { GenericContainer, Wait, type StartedTestContainer } from "testcontainers";
import { freePort, removeOnExit } from "./processes.js";

export interface S3Endpoint {
  readonly endpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
}

export interface StartedMinio extends S3Endpoint {
  readonly container: StartedTestContainer;
  /** The container's name as podman lists it. */
  readonly containerName: string;
}

/** An OpenID provider MinIO's STS trusts (AssumeRoleWithWebIdentity): the API server, whose CA MinIO is given. */
export interface OpenIdTrust {
  configUrl: string;
  caFile: string;
  /** The audience tokens must carry (MinIO's client id). */
  clientId: string;
}

/** MinIO over HTTPS, whose certificate STS (AssumeRoleWithCertificate) requires a client certificate signed by `clientCa`. */
export interface MinioTls {
  cert: string;
  key: string;
  clientCa: string;
}

export interface MinioOptions {
  openId?: OpenIdTrust;
  tls?: MinioTls;
}

/** A MinIO server in a new container; DOCKER_HOST must name the environment's podman. */
export async function startMinio(image: string, options: MinioOptions = {}): Promise<StartedMinio & { roleArn?: string }> {
  const { openId, tls } = options;
  const [port, consolePort] = [await freePort(), await freePort()];
  const accessKey = "gitsync-minio";
  const secretKey = `minio-${Math.random().toString(36).slice(2)}`;
  let container = new GenericContainer(image)
    .withNetworkMode("host")
    .withEnvironment({
      MINIO_ROOT_USER: accessKey,
      MINIO_ROOT_PASSWORD: secretKey,
      MINIO_BROWSER: "off",
      HOME: "/data",
      ...(openId
        ? {
            MINIO_IDENTITY_OPENID_CONFIG_URL: openId.configUrl,
            MINIO_IDENTITY_OPENID_CLIENT_ID: openId.clientId,
            MINIO_IDENTITY_OPENID_ROLE_POLICY: "readwrite",
          }
        : {}),
      ...(tls ? { MINIO_IDENTITY_TLS_ENABLE: "on" } : {}),
    })
    .withCommand([
      "server",
      "/data/store",
      "--address",
      `127.0.0.1:${port}`,
      "--console-address",
      `127.0.0.1:${consolePort}`,
      ...(openId || tls ? ["--certs-dir", "/certs"] : []),
    ])
    .withWaitStrategy(Wait.forLogMessage(/API: /))
    .withStartupTimeout(60_000);
  if (openId || tls) {
    // MinIO trusts the CAs in <certs-dir>/CAs (the OpenID provider's, the clients'); it serves
    // HTTPS only when public.crt and private.key are there too.
    const certs = mkdtempSync(path.join(os.tmpdir(), "gitsync-minio-certs-"));
    removeOnExit(certs);
    mkdirSync(path.join(certs, "CAs"));
    if (openId) copyFileSync(openId.caFile, path.join(certs, "CAs", "issuer-ca.crt"));
    if (tls) {
      copyFileSync(tls.cert, path.join(certs, "public.crt"));
      copyFileSync(tls.key, path.join(certs, "private.key"));
      copyFileSync(tls.clientCa, path.join(certs, "CAs", "client-ca.crt"));
    }
    container = container.withBindMounts([{ source: certs, target: "/certs", mode: "ro" }]);
  }
  const started = await container.start();
  const roleArn = openId ? await loggedRoleArn(started) : undefined;
  const scheme = tls ? "https" : "http";
  return { endpoint: `${scheme}://127.0.0.1:${port}`, accessKey, secretKey, container: started, containerName: started.getName().replace(/^\//, ""), roleArn };
}

/** The role MinIO made for its OpenID provider, as it logs it at start (arn:minio:iam:::role/...). */
async function loggedRoleArn(container: StartedTestContainer): Promise<string> {
  const stream = await container.logs();
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new Error(`MinIO logged no role ARN for its OpenID provider:\n${seen.slice(-2000)}`));
    }, 30_000);
    stream.on("data", (chunk: Buffer | string) => {
      seen += chunk.toString();
      const arn = /arn:minio:iam:::role\/[A-Za-z0-9_-]+/.exec(seen)?.[0];
      if (!arn) return;
      clearTimeout(timer);
      stream.destroy();
      resolve(arn);
    });
  });
}
