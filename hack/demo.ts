// `make demo`: the local environment with a real node, the CRDs and samples applied, and the
// operator installed in the cluster by its Helm chart from an image built here. With
// OUT_OF_CLUSTER=1 (make demo OUT_OF_CLUSTER=1) the operator runs in the foreground instead,
// for debugging. Ctrl-C stops the operator and every server the environment started.

import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import path from "node:path";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { runOperator } from "../src/cli/operator.js";
import { controllers } from "../src/controllers/index.js";
import { Environment } from "./env/environment.js";
import { removeOnExit } from "./env/processes.js";
import { Prometheus } from "./env/prometheus.js";
import { OPERATOR_IMAGE, operatorImage } from "./env/images.js";
import { BRIDGE_IP, TESTAPP_IMAGE } from "./env/node.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
/** The path deploy/samples/datasetadvert.yaml's SSH URL names: a link to the git server's folder. */
const DEMO_GIT_ROOT = "/tmp/gitsync-demo-git";
const env = new Environment({
  gitPort: Number(process.env.GITSYNC_DEMO_GIT_PORT ?? 18080),
  s3Port: Number(process.env.GITSYNC_DEMO_S3_PORT ?? 19000),
  datasetsPort: Number(process.env.GITSYNC_DEMO_ETCD_PORT ?? 12379),
  sshPort: Number(process.env.GITSYNC_DEMO_SSH_PORT ?? 12222),
  datasets: true,
  node: true,
});
const inCluster = !/^(1|true|yes)$/i.test(process.env.OUT_OF_CLUSTER ?? "");
await env.start();
seedServiceRepos(env);
env.git.createRepo("weather-dataset", {
  "README.md": "Hourly readings of three stations\n",
  "data/2026.csv": "station,hour,temp\na,0,4.1\nb,0,3.8\nc,0,5.0\n",
});
await seedBackups(env);
seedComposeRepo(env);
const partition = await seedPartition(env);
await env.installCrds();
await env.kubectlOk(["create", "namespace", "gitsync-system"]);
await env.createGitSecret("git-demo");
await env.kubectlOk(["create", "secret", "generic", "s3-demo", `--from-literal=accesskey=${env.s3.accessKey}`, `--from-literal=secretkey=${env.s3.secretKey}`]);
const datasets = env.datasets;
if (datasets) {
  await env.kubectlOk([
    "create",
    "secret",
    "generic",
    "etcd-demo",
    `--from-literal=username=${datasets.operator.username}`,
    `--from-literal=password=${datasets.operator.password}`,
    `--from-file=ca.crt=${datasets.caFile}`,
  ]);
}

// The dataset sample reads its repo over SSH: sshd serves the git server's folder, which a
// fixed path names (the environment's own folder is a new temp folder each run).
rmSync(DEMO_GIT_ROOT, { force: true });
symlinkSync(env.git.root, DEMO_GIT_ROOT);
removeOnExit(DEMO_GIT_ROOT);
writeFileSync(path.join(env.dir, "ssh-demo-known_hosts"), env.ssh.knownHostsAt(BRIDGE_IP, env.ssh.port));
await env.kubectlOk([
  "create",
  "secret",
  "generic",
  "ssh-demo",
  `--from-file=identity=${env.ssh.identityFile()}`,
  `--from-file=known_hosts=${path.join(env.dir, "ssh-demo-known_hosts")}`,
]);
await env.kubectlOk(["create", "secret", "generic", "age-demo", `--from-literal=identity.agekey=${partition.identity}`]);
await env.kubectlOk(["create", "secret", "generic", "signing-demo", `--from-literal=signing.key=${partition.signingKey}`]);

if (inCluster) await installOperator(env);

const samples = path.join(ROOT, "deploy/samples");
const files = existsSync(samples) ? readdirSync(samples).filter((f) => f.endsWith(".yaml")) : [];
for (const file of files) await env.kubectlOk(["apply", "-f", path.join(samples, file)]);
// The producer encrypts to the identity made for this demo.
await env.kubectlOk(["patch", "psync", "open-side", "--type=merge", "-p", JSON.stringify({ spec: { recipients: [partition.recipient] } })]);

// Prometheus with the chart's alerting rules, scraping the operator (its pods, or this process).
const prometheus = await Prometheus.start({
  binary: env.tools.prometheus ?? "prometheus",
  dir: path.join(env.dir, "prometheus"),
  port: Number(process.env.GITSYNC_DEMO_PROMETHEUS_PORT ?? 19090),
  scrape: inCluster ? { namespace: "gitsync-system", kubeconfig: env.admin.kubeconfig } : { targets: ["127.0.0.1:8080"] },
});

// A folder holding `kubectl` itself, so that a pasted PATH line works in every shell (an alias
// in pasted text is not expanded by some).
const kubectl = env.tools.kubectl ?? "kubectl";
const kubectlDir = path.join(path.dirname(kubectl), "path");
mkdirSync(kubectlDir, { recursive: true });
rmSync(path.join(kubectlDir, "kubectl"), { force: true });
symlinkSync(kubectl, path.join(kubectlDir, "kubectl"));
process.stderr.write(`
gitsync demo is running. In another terminal:

  export KUBECONFIG=${env.admin.kubeconfig}
  export PATH=${kubectlDir}:$PATH
  kubectl get gitsync -A
  kubectl get pods -A          # the operator (${inCluster ? "in-cluster, two replicas" : "out of cluster, in this terminal"}), CoreDNS
  kubectl wait --for=condition=Ready shs/shop cbs/backups dsa/weather cdep/shop-compose psync/open-side psync/inside --timeout=3m
  kubectl get cdep,deploy,svc,cm    # the compose project's services, rolled only when they change
  kubectl get psync                 # open/catalog mirrored to inside/catalog through the bucket
  npx gitsync dataset ls weather   # with ETCD_ENDPOINTS=${datasets?.endpoint} ETCD_CACERT=${datasets?.caFile}
                                   # ETCD_USERNAME=${datasets?.operator.username} ETCD_PASSWORD=<from the etcd-demo Secret>
  kubectl describe shs shop
  kubectl annotate cbs backups gitsync.dev/requestedAt="$(date +%s)" --overwrite

(Without the PATH line, kubectl is ${kubectl}.)
Samples applied: ${files.length ? files.join(", ") : "none yet"}. Git server: ${env.git.baseUrl} (user ${env.git.username}),
and over SSH on ${BRIDGE_IP}:${env.ssh.port} (dsa/weather reads its repo that way, with the ssh-demo Secret: identity, known_hosts).
Break the handshake: git clone ${env.git.baseUrl.replace("://", `://${env.git.username}:<password from the git-demo Secret>@`)}/stock-config.git,
bump contract.yaml's version, push, and annotate shs/shop with gitsync.dev/requestedAt.
Prometheus: ${prometheus.url} (the chart's alerts at ${prometheus.url}/alerts; query gitsync_resource_ready, or the
dashboard's queries in deploy/helm/gitsync-operator/files/dashboard.json).
Press Ctrl-C to stop everything.

`);

const code = inCluster
  ? await untilInterrupted()
  : await runOperator(
      [
        `--kubeconfig=${env.admin.kubeconfig}`,
        "--http-address=127.0.0.1:8080",
        "--leader-elect",
        "--leader-election-namespace=gitsync-system",
        "--identity=demo",
      ],
      controllers,
    );
await prometheus.stop();
await env.stop();
rmSync(DEMO_GIT_ROOT, { force: true });
process.exit(code);

/** The operator's image, imported into the node, installed by the chart with two replicas. */
async function installOperator(environment: Environment): Promise<void> {
  const node = environment.node;
  const helm = environment.tools.helm;
  if (!node || !helm) throw new Error("the in-cluster demo needs the node and helm");
  const archive = path.join(environment.dir, "operator-image.tar");
  await operatorImage(archive);
  node.importImage(archive);
  const [repository, tag] = OPERATOR_IMAGE.split(":") as [string, string];
  const chart = path.join(ROOT, "deploy/helm/gitsync-operator");
  const values = `image.repository=${repository},image.tag=${tag},image.pullPolicy=Never`;
  execFileSync(
    helm,
    ["--kubeconfig", environment.admin.kubeconfig, "install", "gitsync", chart, "-n", "gitsync-system", "--set", values, "--wait", "--timeout=180s"],
    { stdio: "inherit" },
  );
}

/** Waits for Ctrl-C or SIGTERM while the in-cluster operator runs; 0 then. */
function untilInterrupted(): Promise<number> {
  return new Promise((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve(0));
  });
}

/** A client of the environment's S3 server, as its root account. */
function s3Of(environment: Environment): S3Client {
  return new S3Client({
    endpoint: environment.s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: environment.s3.accessKey, secretAccessKey: environment.s3.secretKey },
  });
}

/** The bucket and repo deploy/samples/clusterbackupsync.yaml names: two clusters' backups. */
async function seedBackups(environment: Environment): Promise<void> {
  const s3 = s3Of(environment);
  await s3.send(new CreateBucketCommand({ Bucket: "cluster-backups" }));
  for (const cluster of ["production", "staging"]) {
    for (const name of ["api", "web", "worker"]) {
      const Key = `clusterbackup/${cluster}/default/deployments/${name}.yaml`;
      await s3.send(
        new PutObjectCommand({
          Bucket: "cluster-backups",
          Key,
          Body: `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\n  namespace: default\n`,
        }),
      );
    }
  }
  s3.destroy();
  environment.git.createRepo("cluster-backups");
}

/** The compose project deploy/samples/composedeployment.yaml names: the test application as three services. */
function seedComposeRepo(environment: Environment): void {
  const service = (name: string, extra: string[]): string[] => [`  ${name}:`, `    image: ${TESTAPP_IMAGE}`, "    pull_policy: never", ...extra];
  const compose = [
    "services:",
    ...service("web", ['    ports: ["80:8080"]', "    environment:", "      GREETING: ${GREETING:-hello}", "    volumes: [./web/conf:/etc/web]"]),
    ...service("api", ['    expose: ["8080"]', "    env_file: api.env", "    depends_on:", "      web: { condition: service_healthy }"]),
    ...service("worker", ["    volumes: [./worker/settings.ini:/etc/worker/settings.ini]"]),
  ];
  environment.git.createRepo("shop-compose", {
    "compose.yaml": `${compose.join("\n")}\n`,
    ".env": "GREETING=hello from the demo\n",
    "api.env": "API_NAME=orders\n",
    "web/conf/site.conf": "listen 8080;\n",
    "web/conf/nested/routes.conf": "route / v1\n",
    "worker/settings.ini": "[worker]\nthreads=2\n",
  });
}

/** The bucket, repos and keys deploy/samples/partitionsync.yaml names. */
async function seedPartition(environment: Environment): Promise<{ identity: string; recipient: string; signingKey: string }> {
  environment.git.createRepo("open/catalog", { "README.md": "The product catalog\n", "items.csv": "sku,name\n1,kettle\n" });
  environment.git.createRepo("inside/catalog");
  const s3 = s3Of(environment);
  await s3.send(new CreateBucketCommand({ Bucket: "partition" }));
  s3.destroy();
  const identity = await generateIdentity();
  const signingKey = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return { identity, recipient: await identityToRecipient(identity), signingKey };
}

/** The config repos deploy/samples/servicehandshake.yaml names. */
function seedServiceRepos(environment: Environment): void {
  const { git } = environment;
  git.createRepo("pricing-config", {
    "service.yaml":
      "metadata:\n  name: pricing\n  version: 1.0.0\ndesiredState:\n  stockService:\n    sync: strict\n    version: 2.1.0\n  restock:\n    sync: relaxed\n    version: 1.2.0\n",
    "contract.yaml": "version: 1.0.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /price/{id}\n",
    "interface.yaml":
      "dependencies:\n  - name: stock\n    outbound:\n      method: GET\n      path: /stock/{id}\n  - name: restock\n    outbound:\n      method: POST\n      path: /orders\n",
  });
  git.createRepo("stock-config", {
    "service.yaml": "metadata:\n  name: stock\n",
    "contract.yaml": "version: 2.1.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /stock/{productId}\n",
  });
  git.createRepo("restock-config", {
    "service.yaml": "metadata:\n  name: restock\n",
    "contract.yaml": "version: 1.2.0\napiSpec:\n  endpoints:\n    - method: POST\n      path: /orders\n",
  });
}
