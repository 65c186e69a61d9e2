// A process that starts the whole local environment (with the node) and waits to be killed:
// the leak test SIGKILLs it. Prints one line, READY and the environment's folder, when up.

import { Environment } from "../../hack/env/environment.js";

const env = new Environment({ datasets: true, node: true, log: () => undefined });
await env.start();
process.stdout.write(`READY ${JSON.stringify({ dir: env.dir, apiServer: env.apiServerUrl })}\n`);
setInterval(() => undefined, 60_000);
