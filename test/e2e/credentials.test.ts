// Production credentials and networks, end to end: S3 with no static keys (MinIO's STS trusting
// the API server's ServiceAccount tokens, as AWS STS trusts EKS's: IRSA with real tokens), an
// HTTP proxy (tinyproxy) in front of git over HTTP and SSH, and a git server that requires a
// client certificate. Every credential the tests hand out is looked for afterwards in the
// status, the events and the operator's log.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { fromWebToken } from "@aws-sdk/credential-providers";
import { generateIdentity, identityToRecipient } from "age-encryption";
import type { StartedTestContainer } from "testcontainers";
import { stringify } from "yaml";
import { clientCertificate, serverCertificate } from "../../hack/env/certs.js";
import { startMinio } from "../../hack/env/minio.js";
import { TESTAPP_IMAGE } from "../../hack/env/node.js";
import { HttpProxy } from "../../hack/env/proxy.js";
import { clusterBackupSyncKind, type ClusterBackupSyncStatus } from "../../src/crds/clusterbackupsync.js";
import { composeDeploymentKind } from "../../src/crds/composedeployment.js";
import { datasetAdvertKind } from "../../src/crds/datasetadvert.js";
import { partitionSyncKind, type PartitionSyncStatus } from "../../src/crds/partitionsync.js";
import { serviceHandshakeKind } from "../../src/crds/servicehandshake.js";
import { resourceOf, resourcePath, type KubeClient, type KubeList } from "../../src/runtime/kube.js";
import { BackupBucket } from "./fixtures/backups.js";
import { eventually, OperatorProcess, runGitsync } from "./helpers.js";
import { waitForReady, type StatusLike } from "./kstatus.js";
import { adminClient, createSecret, env, kubectlOk } from "./setup.js";

interface Obj<Status = StatusLike["status"]> {
  metadata: { generation: number };
  status?: Status & StatusLike["status"];
}

type KindDef = Parameters<typeof resourceOf>[0];

const get = <S = unknown>(kube: KubeClient, kind: KindDef, ns: string, name: string): Promise<Obj<S>> =>
  kube.request<Obj<S>>("GET", resourcePath(resourceOf(kind), ns, name));

const apply = (kind: string, ns: string, name: string, spec: Record<string, unknown>): Promise<string> =>
  kubectlOk(["apply", "-f", "-"], stringify({ apiVersion: "gitsync.dev/v1beta1", kind, metadata: { name, namespace: ns }, spec }));

/** Everything a person could read about objects of a namespace: their status and events. */
async function shownIn(kube: KubeClient, ns: string, kinds: KindDef[]): Promise<string> {
  const texts: string[] = [];
  for (const kind of kinds) texts.push(JSON.stringify(await kube.request("GET", resourcePath(resourceOf(kind), ns))));
  texts.push(JSON.stringify(await kube.request<KubeList<unknown>>("GET", `/apis/events.k8s.io/v1/namespaces/${ns}/events`)));
  return texts.join("\n");
}

/** The message of an object's FetchFailed condition, once it is set. */
const fetchFailure = (kube: KubeClient, kind: KindDef, ns: string, name: string): Promise<string> =>
  eventually(async () => {
    const failed = (await get(kube, kind, ns, name)).status?.conditions?.find((c) => c.type === "FetchFailed");
    assert.ok(failed, `FetchFailed is set on ${name}`);
    return failed.message;
  }, 60_000);

/** Deletes a namespace's objects while its operator still runs (their finalizers are its to remove), so no later operator takes them up. */
async function removeAll(ns: string, plurals: string[]): Promise<void> {
  await kubectlOk(["delete", plurals.map((p) => `${p}.gitsync.dev`).join(","), "--all", "-n", ns, "--wait=true", "--timeout=90s"]);
}

/** A JSON Web Token anywhere in the text (every ServiceAccount token is one). */
const JWT = /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./;

function seedService(repo: string): void {
  env().git.createRepo(repo, { "service.yaml": `metadata:\n  name: ${repo}\n  version: 1.0.0\n` });
}

describe("Production credentials and networks", function () {
  let kube: KubeClient;
  /** tinyproxy, for the proxy tests of the operator and of the commands. */
  let proxy: HttpProxy;

  before(async function () {
    this.timeout(60_000);
    kube = adminClient();
    proxy = new HttpProxy(path.join(env().dir, "proxy"), path.join(env().dir, "logs"), `proxy-pass-${Math.random().toString(36).slice(2, 10)}`);
    await proxy.start();
  });

  after(async () => {
    kube.close();
    await proxy?.stop();
  });

  describe("S3 without static keys: MinIO's STS trusts the API server's ServiceAccount tokens (IRSA)", function () {
    const ns = "identity-e2e";
    let minio: { endpoint: string; accessKey: string; secretKey: string; roleArn?: string; container: StartedTestContainer };
    let roleArn: string;
    let s3: S3Client;
    let operator: OperatorProcess;
    let tokenFile: string;
    let scratch: string;

    /** A token of a ServiceAccount for STS, as EKS projects one into a pod. */
    const token = async (account: string): Promise<string> =>
      (await kubectlOk(["create", "token", account, "-n", ns, "--audience", "sts.amazonaws.com"])).trim();

    before(async function () {
      this.timeout(180_000);
      // Under the environment's folder, which goes with it.
      scratch = mkdtempSync(path.join(env().dir, "identity-e2e-"));
      minio = await startMinio(env().minioImage, { openId: { ...env().openIdProvider, clientId: "sts.amazonaws.com" } });
      assert.ok(minio.roleArn, "MinIO made a role for the API server as its OpenID provider");
      roleArn = minio.roleArn;
      s3 = new S3Client({
        endpoint: minio.endpoint,
        region: "us-east-1",
        forcePathStyle: true,
        credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
      });
      await kubectlOk(["create", "namespace", ns]);
      await createSecret(ns, "git", { username: env().git.username, password: env().git.password });
      for (const [account, role] of [
        ["backup-writer", roleArn],
        ["operator-irsa", roleArn],
        ["no-role", undefined],
        ["unknown-role", "arn:minio:iam:::role/no-such-role-4711"],
      ] as const) {
        await kubectlOk(["create", "serviceaccount", account, "-n", ns]);
        if (role) await kubectlOk(["annotate", "serviceaccount", account, "-n", ns, `eks.amazonaws.com/role-arn=${role}`]);
      }
      // The operator's own identity, as IRSA gives a pod one: a token file and the role, no keys.
      tokenFile = path.join(scratch, "token");
      writeFileSync(tokenFile, await token("operator-irsa"));
      operator = OperatorProcess.start({
        entry: "gitsync",
        env: {
          AWS_ROLE_ARN: roleArn,
          AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
          AWS_ENDPOINT_URL_STS: minio.endpoint,
          AWS_REGION: "us-east-1",
          AWS_ACCESS_KEY_ID: undefined,
          AWS_SECRET_ACCESS_KEY: undefined,
        },
      });
    });

    after(async function () {
      this.timeout(120_000);
      await removeAll(ns, ["clusterbackupsyncs", "partitionsyncs"]);
      await operator?.stop();
      s3?.destroy();
      await minio?.container.stop({ timeout: 1_000 });
    });

    afterEach(function () {
      if (this.currentTest?.state === "failed") process.stderr.write(`\nOperator log:\n${operator.lines.slice(-40).join("\n")}\n`);
    });

    /** A command's environment with web identity only, as IRSA gives a pod: no keys. */
    const webIdentity = (): NodeJS.ProcessEnv => ({
      ...process.env,
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ROLE_ARN: roleArn,
      AWS_ENDPOINT_URL_STS: minio.endpoint,
      AWS_REGION: "us-east-1",
    });

    /** `gitsync backup sync` of a bucket into the repository of the same name, with web identity. */
    const backupSync = (bucket: string, extra: NodeJS.ProcessEnv = {}): ReturnType<typeof runGitsync> =>
      runGitsync(["backup", "sync", "--quiet"], {
        ...webIdentity(),
        MINIO_ENDPOINT: minio.endpoint,
        MINIO_BUCKET: bucket,
        GIT_REPOSITORY: env().git.url(bucket),
        GIT_USERNAME: env().git.username,
        GIT_TOKEN: env().git.password,
        ...extra,
      });

    const backup = (name: string, source: Record<string, unknown>): Promise<string> =>
      apply("ClusterBackupSync", ns, name, {
        interval: "2s",
        source: { endpoint: minio.endpoint, bucket: name, insecure: true, ...source },
        destination: { url: env().git.url(name), branch: "main", secretRef: { name: "git" } },
      });

    it("backs up as the object's own ServiceAccount: a token requested for it, exchanged for its role's temporary keys", async () => {
      await BackupBucket.create(s3, "sa-backup");
      env().git.createRepo("sa-backup");
      await backup("sa-backup", { provider: "aws", serviceAccountName: "backup-writer" });
      const cbs = await waitForReady(() => get<ClusterBackupSyncStatus>(kube, clusterBackupSyncKind, ns, "sa-backup"), "True", "Synced", 60_000);
      assert.equal(cbs.status?.files, 72);
      assert.deepEqual(cbs.status?.identity, { provider: "aws", source: "serviceAccount", roleArn, serviceAccount: "backup-writer" });
      assert.equal(env().git.git("sa-backup", "rev-list", "--count", "main"), "1");
      const described = await kubectlOk(["describe", "cbs", "-n", ns, "sa-backup"]);
      assert.match(described, /Service Account:\s+backup-writer/);
    });

    it("backs up as the operator's own identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN) with provider aws and no Secret", async () => {
      await BackupBucket.create(s3, "irsa-backup");
      env().git.createRepo("irsa-backup");
      await backup("irsa-backup", { provider: "aws" });
      const cbs = await waitForReady(() => get<ClusterBackupSyncStatus>(kube, clusterBackupSyncKind, ns, "irsa-backup"), "True", "Synced", 60_000);
      assert.deepEqual(cbs.status?.identity, { provider: "aws", source: "operator", roleArn });
      assert.equal(cbs.status?.files, 72);
    });

    it("says what is wrong with an identity, naming the ServiceAccount, the role and STS, and shows no token anywhere", async () => {
      await BackupBucket.create(s3, "no-role");
      await BackupBucket.create(s3, "unknown-role");
      // Their repositories exist, so that the identity is the only thing that can fail.
      env().git.createRepo("no-role");
      env().git.createRepo("unknown-role");
      await backup("no-role", { provider: "aws", serviceAccountName: "no-role" });
      await backup("unknown-role", { provider: "aws", serviceAccountName: "unknown-role" });
      await backup("generic-no-keys", { serviceAccountName: "backup-writer" }).then(
        () => assert.fail("the API server should refuse serviceAccountName without provider aws"),
        (err: Error) => assert.match(err.message, /serviceAccountName needs provider: aws/),
      );
      const noRole = await waitForReady(() => get(kube, clusterBackupSyncKind, ns, "no-role"), "False", "MissingRole", 30_000);
      const ready = (o: Obj<unknown>): string => o.status?.conditions?.find((c) => c.type === "Ready")?.message ?? "";
      assert.match(ready(noRole), /spec\.source\.serviceAccountName: ServiceAccount identity-e2e\/no-role has no eks\.amazonaws\.com\/role-arn annotation/);
      const refused = await fetchFailure(kube, clusterBackupSyncKind, ns, "unknown-role");
      assert.match(
        refused,
        new RegExp(`STS at ${minio.endpoint.replace(/\./g, "\\.")} refused AssumeRoleWithWebIdentity for role arn:minio:iam:::role/no-such-role-4711`),
      );
      const shown = await shownIn(kube, ns, [clusterBackupSyncKind]);
      assert.doesNotMatch(shown, JWT, "no ServiceAccount token in status or events");
      assert.doesNotMatch(operator.lines.join("\n"), JWT, "no ServiceAccount token in the operator's log");
    });

    it("runs gitsync backup sync and gitsync partition produce/consume with web-identity and temporary credentials", async function () {
      this.timeout(120_000);
      await BackupBucket.create(s3, "cli-backup");
      env().git.createRepo("cli-backup");
      const synced = await backupSync("cli-backup");
      assert.equal(synced.code, 0, synced.stderr);
      const files = env().git.git("cli-backup", "ls-tree", "-r", "--name-only", "main").split("\n");
      assert.equal(files.filter((f) => f.endsWith(".yaml")).length, 72);

      // Producer: web identity, as the Go producer runs on EKS. Consumer: temporary keys with a session token.
      await s3.send(new (await import("@aws-sdk/client-s3")).CreateBucketCommand({ Bucket: "cli-partition" }));
      env().git.createRepo("ship/app", { "README.md": "shipped with temporary credentials\n" });
      const identity = await generateIdentity();
      const desired = path.join(scratch, "desired.yaml");
      writeFileSync(
        desired,
        stringify({
          apps_v1: [
            {
              codeComponents: [
                {
                  gitlabSync: {
                    sourceProject: { name: "app", group: "ship", branch: "main" },
                    destinationProject: { name: "app", group: "landed", branch: "main" },
                  },
                },
              ],
            },
          ],
        }),
      );
      const partition = {
        AWS_S3_BUCKET: "cli-partition",
        AWS_ENDPOINT_URL_S3: minio.endpoint,
        GITLAB_BASE_URL: env().git.baseUrl,
        GITLAB_USERNAME: env().git.username,
        GITLAB_TOKEN: env().git.password,
        WORKDIR: scratch,
      };
      const produced = await runGitsync(["partition", "produce", "--insecure", "--quiet"], {
        ...webIdentity(),
        ...partition,
        PUBLIC_KEY: await identityToRecipient(identity),
        DESIRED_STATE_FILE: desired,
      });
      assert.equal(produced.code, 0, produced.stderr);
      const temporary = await fromWebToken({
        roleArn,
        webIdentityToken: await token("backup-writer"),
        roleSessionName: "e2e-consumer",
        clientConfig: { region: "us-east-1", endpoint: minio.endpoint },
      })();
      assert.ok(temporary.sessionToken, "STS gave temporary keys");
      env().git.createRepo("landed/app");
      const consumed = await runGitsync(["partition", "consume", "--insecure", "--quiet"], {
        ...process.env,
        ...partition,
        AWS_ACCESS_KEY_ID: temporary.accessKeyId,
        AWS_SECRET_ACCESS_KEY: temporary.secretAccessKey,
        AWS_SESSION_TOKEN: temporary.sessionToken,
        AWS_REGION: "us-east-1",
        PRIVATE_KEY: identity,
      });
      assert.equal(consumed.code, 0, consumed.stderr);
      assert.equal(env().git.git("landed/app", "rev-parse", "main"), env().git.git("ship/app", "rev-parse", "main"));
      const output = [synced, produced, consumed].map((r) => r.stdout + r.stderr).join("\n");
      assert.doesNotMatch(output, JWT);
      assert.ok(!output.includes(temporary.secretAccessKey) && !output.includes(temporary.sessionToken), "no temporary key in the commands' output");
    });

    it("fails a command whose token is for another audience, naming the role and STS and never the token", async () => {
      const wrongAudience = path.join(scratch, "wrong-audience");
      writeFileSync(wrongAudience, (await kubectlOk(["create", "token", "operator-irsa", "-n", ns, "--audience", "not-sts"])).trim());
      await BackupBucket.create(s3, "cli-refused");
      // The repository exists, so that the bucket is the only thing that can fail (the two are reached at once).
      env().git.createRepo("cli-refused");
      const refused = await backupSync("cli-refused", { AWS_WEB_IDENTITY_TOKEN_FILE: wrongAudience, RETRY_ATTEMPTS: "1" });
      assert.notEqual(refused.code, 0, JSON.stringify(refused));
      assert.match(
        `${refused.stdout}${refused.stderr}`,
        new RegExp(`STS at ${minio.endpoint.replace(/\./g, "\\.")} refused AssumeRoleWithWebIdentity for role ${roleArn.replace(/[/]/g, "\\/")}`),
      );
      assert.doesNotMatch(`${refused.stdout}${refused.stderr}`, JWT);
    });

    it("runs gitsync backup sync through HTTP_PROXY: STS, S3 and git all pass the proxy, and its password is not shown", async function () {
      this.timeout(120_000);
      await BackupBucket.create(s3, "cli-proxied");
      env().git.createRepo("cli-proxied");
      const minioHost = new URL(minio.endpoint).host;
      const synced = await backupSync("cli-proxied", { HTTP_PROXY: proxy.url, NO_PROXY: "" });
      assert.equal(synced.code, 0, synced.stderr);
      const seen = proxy.requestsTo(minioHost);
      assert.ok(
        seen.some((line) => line.includes(`POST http://${minioHost}/ `)),
        `the STS call went through the proxy:\n${seen.slice(0, 5).join("\n")}`,
      );
      assert.ok(
        seen.some((line) => line.includes(`GET http://${minioHost}/cli-proxied/clusterbackup/`)),
        "the downloads went through the proxy",
      );
      assert.ok(proxy.requestsTo(`127.0.0.1:${new URL(env().git.baseUrl).port}/cli-proxied.git`).length > 0, "the push went through the proxy");
      assert.ok(!`${synced.stdout}${synced.stderr}`.includes(proxy.password), "the proxy's password is not shown");
    });

    it("runs a PartitionSync producer as its ServiceAccount and a consumer with a Secret of temporary keys", async function () {
      this.timeout(120_000);
      await s3.send(new (await import("@aws-sdk/client-s3")).CreateBucketCommand({ Bucket: "kind-partition" }));
      env().git.createRepo("kship/svc", { "main.go": "package main\n" });
      env().git.createRepo("kland/svc");
      const identity = await generateIdentity();
      const temporary = await fromWebToken({
        roleArn,
        webIdentityToken: await token("backup-writer"),
        roleSessionName: "e2e-kind-consumer",
        clientConfig: { region: "us-east-1", endpoint: minio.endpoint },
      })();
      await createSecret(ns, "temporary-keys", {
        accesskey: temporary.accessKeyId,
        secretkey: temporary.secretAccessKey,
        sessiontoken: temporary.sessionToken ?? "",
      });
      await createSecret(ns, "age", { "identity.agekey": identity });
      const bucket = { endpoint: minio.endpoint, bucket: "kind-partition", insecure: true };
      await apply("PartitionSync", ns, "producer", {
        interval: "3s",
        role: "Producer",
        bucket: { ...bucket, provider: "aws", serviceAccountName: "backup-writer" },
        recipients: [await identityToRecipient(identity)],
        repos: [
          {
            source: { url: env().git.url("kship/svc"), branch: "main", secretRef: { name: "git" } },
            destination: { group: "kland", project: "svc", branch: "main" },
          },
        ],
      });
      await apply("PartitionSync", ns, "consumer", {
        interval: "3s",
        role: "Consumer",
        bucket: { ...bucket, secretRef: { name: "temporary-keys" } },
        destination: { baseUrl: env().git.baseUrl, secretRef: { name: "git" } },
        identitySecretRef: { name: "age" },
      });
      const tip = env().git.git("kship/svc", "rev-parse", "main");
      await eventually(() => assert.equal(env().git.git("kland/svc", "for-each-ref", "--format=%(objectname)", "refs/heads/main"), tip), 60_000);
      const producer = await waitForReady(() => get<PartitionSyncStatus>(kube, partitionSyncKind, ns, "producer"), "True", "Synced", 30_000);
      assert.deepEqual(producer.status?.identity, { provider: "aws", source: "serviceAccount", roleArn, serviceAccount: "backup-writer" });
      const consumer = await waitForReady(() => get<PartitionSyncStatus>(kube, partitionSyncKind, ns, "consumer"), "True", "Synced", 30_000);
      assert.deepEqual(consumer.status?.identity, { provider: "generic", source: "secret" });
      const shown = await shownIn(kube, ns, [partitionSyncKind, clusterBackupSyncKind]);
      assert.ok(!shown.includes(temporary.secretAccessKey) && !shown.includes(temporary.sessionToken ?? "-"), "no temporary key in status or events");
      assert.doesNotMatch(shown, JWT);
      const log = operator.lines.join("\n");
      assert.ok(!log.includes(temporary.secretAccessKey) && !log.includes(temporary.sessionToken ?? "-"), "no temporary key in the operator's log");
    });
  });

  describe("an HTTP proxy (tinyproxy) in front of git over HTTP and SSH", function () {
    const ns = "proxy-e2e";
    let operator: OperatorProcess;
    const gitPort = (): string => new URL(env().git.baseUrl).port;

    before(async function () {
      this.timeout(60_000);
      await kubectlOk(["create", "namespace", ns]);
      await createSecret(ns, "git", { username: env().git.username, password: env().git.password });
      await createSecret(ns, "deploy-key", { identity: env().ssh.identity(), known_hosts: env().ssh.knownHosts });
      await createSecret(ns, "own-proxy", { address: proxy.address, username: proxy.username, password: proxy.password });
      await createSecret(ns, "bad-proxy", { address: proxy.address, username: proxy.username, password: "not-the-proxy-password-31" });
      // The whole operator behind the proxy, as enterprise clusters run it; localhost is the way around it.
      operator = OperatorProcess.start({ entry: "gitsync", env: { HTTPS_PROXY: proxy.url, http_proxy: proxy.url, NO_PROXY: "localhost" } });
    });

    after(async function () {
      this.timeout(120_000);
      await removeAll(ns, ["servicehandshakes", "composedeployments", "datasetadverts"]);
      await operator?.stop();
    });

    afterEach(function () {
      if (this.currentTest?.state === "failed") process.stderr.write(`\nOperator log:\n${operator.lines.slice(-40).join("\n")}\ntinyproxy:\n${proxy.tail()}\n`);
    });

    const handshake = (name: string, sources: Record<string, unknown>[]): Promise<string> =>
      apply("ServiceHandshake", ns, name, { interval: "2s", services: sources.map((source) => ({ source: { ref: { branch: "main" }, ...source } })) });

    it("fetches over HTTP and over SSH (a CONNECT tunnel) through HTTPS_PROXY and http_proxy, and NO_PROXY sends a host past it", async () => {
      for (const repo of ["px-http", "px-ssh", "px-direct"]) seedService(repo);
      await handshake("through-proxy", [
        { url: env().git.url("px-http"), secretRef: { name: "git" } },
        { url: env().ssh.url("px-ssh"), secretRef: { name: "deploy-key" } },
      ]);
      await handshake("past-proxy", [{ url: env().git.url("px-direct").replace("//127.0.0.1:", "//localhost:"), secretRef: { name: "git" } }]);
      await waitForReady(() => get(kube, serviceHandshakeKind, ns, "through-proxy"), "True", "HandshakeSucceeded", 60_000);
      await waitForReady(() => get(kube, serviceHandshakeKind, ns, "past-proxy"), "True", "HandshakeSucceeded", 60_000);
      assert.ok(
        proxy.requestsTo(`127.0.0.1:${gitPort()}/px-http.git`).some((line) => /GET http:/.test(line)),
        `tinyproxy relayed the HTTP fetch:\n${proxy.tail()}`,
      );
      assert.ok(
        proxy.requestsTo(`127.0.0.1:${env().ssh.port}`).some((line) => /CONNECT 127\.0\.0\.1:\d+/.test(line)),
        `tinyproxy tunnelled SSH:\n${proxy.tail()}`,
      );
      assert.deepEqual(proxy.requestsTo(`localhost:${gitPort()}`), [], "NO_PROXY=localhost went direct");
    });

    it("takes a ComposeDeployment's and a DatasetAdvert's own proxySecretRef, over NO_PROXY", async function () {
      this.timeout(120_000);
      const viaOwn = (repo: string): Record<string, unknown> => ({
        url: env().git.url(repo).replace("//127.0.0.1:", "//localhost:"),
        ref: { branch: "main" },
        secretRef: { name: "git" },
        proxySecretRef: { name: "own-proxy" },
      });
      env().git.createRepo("px-compose", { "compose.yaml": `services:\n  hello:\n    image: ${TESTAPP_IMAGE}\n    pull_policy: never\n` });
      env().git.createRepo("px-dataset", { "README.md": "A dataset behind a proxy\n" });
      await apply("ComposeDeployment", ns, "px-compose", { interval: "3s", source: viaOwn("px-compose") });
      const datasets = env().datasets;
      assert.ok(datasets, "the environment runs the datasets etcd");
      await createSecret(ns, "etcd", { username: datasets.operator.username, password: datasets.operator.password, "ca.crt": datasets.caCert });
      await apply("DatasetAdvert", ns, "px-dataset", {
        interval: "3s",
        hub: "proxied",
        source: viaOwn("px-dataset"),
        etcd: { endpoints: [datasets.endpoint], secretRef: { name: "etcd" } },
        ttl: "1h",
      });
      await waitForReady(() => get(kube, datasetAdvertKind, ns, "px-dataset"), "True", "Advertised", 60_000);
      await waitForReady(() => get(kube, composeDeploymentKind, ns, "px-compose"), "True", "Applied", 90_000);
      for (const repo of ["px-compose", "px-dataset"]) {
        assert.ok(proxy.requestsTo(`localhost:${gitPort()}/${repo}.git`).length > 0, `tinyproxy relayed ${repo}:\n${proxy.tail()}`);
      }
    });

    it("says which proxy refused, without its password, and keeps the password out of status, events and the log", async () => {
      seedService("px-refused");
      await handshake("refused", [{ url: env().ssh.url("px-refused"), secretRef: { name: "deploy-key" }, proxySecretRef: { name: "bad-proxy" } }]);
      const message = await fetchFailure(kube, serviceHandshakeKind, ns, "refused");
      assert.match(message, new RegExp(`proxy http://127\\.0\\.0\\.1:${proxy.port} refused the tunnel to 127\\.0\\.0\\.1:${env().ssh.port}: HTTP 401`));
      const shown = `${await shownIn(kube, ns, [serviceHandshakeKind, composeDeploymentKind, datasetAdvertKind])}\n${operator.lines.join("\n")}`;
      for (const secret of [proxy.password, "not-the-proxy-password-31"])
        assert.ok(!shown.includes(secret), `the proxy password ${secret.slice(0, 4)}... is shown somewhere`);
    });
  });

  describe("MinIO over HTTPS, whose certificate STS requires a client certificate", function () {
    const ns = "s3-mtls-e2e";
    let minio: Awaited<ReturnType<typeof startMinio>>;
    let operator: OperatorProcess;
    let s3: S3Client;

    before(async function () {
      this.timeout(180_000);
      const dir = path.join(env().dir, "minio-mtls");
      const server = serverCertificate(dir, "minio", { ips: ["127.0.0.1"] });
      // MinIO maps a certificate's CN to the policy of that name: readwrite is built in.
      const client = clientCertificate(dir, "readwrite");
      const stranger = clientCertificate(path.join(env().dir, "minio-mtls-stranger"), "readwrite");
      minio = await startMinio(env().minioImage, { tls: { cert: server.cert, key: server.key, clientCa: server.ca } });
      const pem = (file: string): string => readFileSync(file, "utf8");
      s3 = new S3Client({
        endpoint: minio.endpoint,
        region: "us-east-1",
        forcePathStyle: true,
        credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
        requestHandler: { httpsAgent: new https.Agent({ ca: pem(server.ca) }) },
      });
      await kubectlOk(["create", "namespace", ns]);
      await createSecret(ns, "git", { username: env().git.username, password: env().git.password });
      await createSecret(ns, "client-cert", { "ca.crt": pem(server.ca), "tls.crt": pem(client.cert), "tls.key": pem(client.key) });
      await createSecret(ns, "stranger-cert", { "ca.crt": pem(server.ca), "tls.crt": pem(stranger.cert), "tls.key": pem(stranger.key) });
      operator = OperatorProcess.start({ entry: "gitsync" });
    });

    after(async function () {
      this.timeout(120_000);
      await removeAll(ns, ["clusterbackupsyncs"]);
      await operator?.stop();
      s3?.destroy();
      await minio?.container.stop({ timeout: 1_000 });
    });

    const backup = (name: string, secret: string): Promise<string> =>
      apply("ClusterBackupSync", ns, name, {
        interval: "2s",
        source: { endpoint: minio.endpoint, bucket: name, secretRef: { name: secret } },
        destination: { url: env().git.url(name), branch: "main", secretRef: { name: "git" } },
      });

    it("backs up with the Secret's tls.crt and tls.key, exchanged for keys, and names the refusal of a certificate MinIO does not trust", async () => {
      await BackupBucket.create(s3, "mtls-backup");
      await BackupBucket.create(s3, "mtls-stranger");
      env().git.createRepo("mtls-backup");
      env().git.createRepo("mtls-stranger");
      await backup("mtls-backup", "client-cert");
      await backup("mtls-stranger", "stranger-cert");
      const cbs = await waitForReady(() => get<ClusterBackupSyncStatus>(kube, clusterBackupSyncKind, ns, "mtls-backup"), "True", "Synced", 60_000);
      assert.equal(cbs.status?.files, 72);
      assert.deepEqual(cbs.status?.identity, { provider: "generic", source: "certificate" });
      const refused = await fetchFailure(kube, clusterBackupSyncKind, ns, "mtls-stranger");
      assert.match(refused, new RegExp(`the STS of ${minio.endpoint.replace(/\./g, "\\.")} \\(AssumeRoleWithCertificate\\) refused the client certificate`));
      assert.doesNotMatch(`${await shownIn(kube, ns, [clusterBackupSyncKind])}\n${operator.lines.join("\n")}`, /BEGIN (RSA |EC )?PRIVATE KEY/);
    });
  });

  describe("a git server that requires a client certificate", function () {
    const ns = "mtls-e2e";
    let operator: OperatorProcess;
    let tls: { baseUrl: string };

    before(async function () {
      this.timeout(60_000);
      const served = await env().git.startMutualTls(path.join(env().dir, "git-mtls"));
      tls = served;
      const pem = (file: string): string => readFileSync(file, "utf8");
      await kubectlOk(["create", "namespace", ns]);
      await createSecret(ns, "with-cert", {
        username: env().git.username,
        password: env().git.password,
        "ca.crt": pem(served.ca),
        "tls.crt": pem(served.client.cert),
        "tls.key": pem(served.client.key),
      });
      await createSecret(ns, "without-cert", { username: env().git.username, password: env().git.password, "ca.crt": pem(served.ca) });
      operator = OperatorProcess.start({ entry: "gitsync" });
    });

    after(async function () {
      this.timeout(120_000);
      await removeAll(ns, ["servicehandshakes"]);
      await operator?.stop();
      await env().git.stopMutualTls();
    });

    it("fetches with the Secret's tls.crt and tls.key, and without them says the handshake failed", async () => {
      seedService("mtls-svc");
      const url = `${tls.baseUrl}/mtls-svc.git`;
      await apply("ServiceHandshake", ns, "with-cert", {
        interval: "2s",
        services: [{ source: { url, ref: { branch: "main" }, secretRef: { name: "with-cert" } } }],
      });
      await apply("ServiceHandshake", ns, "without-cert", {
        interval: "2s",
        services: [{ source: { url, ref: { branch: "main" }, secretRef: { name: "without-cert" } } }],
      });
      await waitForReady(() => get(kube, serviceHandshakeKind, ns, "with-cert"), "True", "HandshakeSucceeded", 60_000);
      const message = await fetchFailure(kube, serviceHandshakeKind, ns, "without-cert");
      assert.match(message, /certificate|handshake|ECONNRESET|socket hang up/i);
      assert.doesNotMatch(`${await shownIn(kube, ns, [serviceHandshakeKind])}\n${operator.lines.join("\n")}`, /BEGIN (RSA |EC )?PRIVATE KEY/);
    });
  });
});
