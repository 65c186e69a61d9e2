// A process that starts the whole local environment (with the node, and podman running MinIO
// through testcontainers) and waits to be killed: the leak test SIGKILLs it. Prints one line,
// READY and the environment's folder and MinIO's pid, when up.

import { Environment } from "../../hack/env/environment.js";
import { startMinio } from "../../hack/env/minio.js";

const env = new Environment({ datasets: true, node: true, podman: true, log: () => undefined });
await env.start();
const minio = await startMinio(env.minioImage);
const minioPid = Number((await env.podman?.podman("inspect", "--format", "{{.State.Pid}}", minio.containerName))?.trim());
process.stdout.write(`READY ${JSON.stringify({ dir: env.dir, apiServer: env.apiServerUrl, minioPid })}\n`);
setInterval(() => undefined, 60_000);
