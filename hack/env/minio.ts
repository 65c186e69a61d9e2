// MinIO, the S3 server the backup job's users run, started through testcontainers on the
// environment's podman from the image the environment built from hack/tools.sh's binary. The
// container shares the host's network (the node's pod bridge already holds podman's default
// subnet) and listens on loopback only.

import { GenericContainer, Wait, type StartedTestContainer } from "testcontainers";
import { freePort } from "./processes.js";

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

/** A MinIO server in a new container; DOCKER_HOST must name the environment's podman. */
export async function startMinio(image: string): Promise<StartedMinio> {
  const [port, consolePort] = [await freePort(), await freePort()];
  const accessKey = "gitsync-minio";
  const secretKey = `minio-${Math.random().toString(36).slice(2)}`;
  const container = await new GenericContainer(image)
    .withNetworkMode("host")
    .withEnvironment({ MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, MINIO_BROWSER: "off", HOME: "/data" })
    .withCommand(["server", "/data/store", "--address", `127.0.0.1:${port}`, "--console-address", `127.0.0.1:${consolePort}`])
    .withWaitStrategy(Wait.forLogMessage(/API: /))
    .withStartupTimeout(60_000)
    .start();
  return { endpoint: `http://127.0.0.1:${port}`, accessKey, secretKey, container, containerName: container.getName().replace(/^\//, "") };
}
