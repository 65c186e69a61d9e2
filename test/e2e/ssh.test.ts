// Git over SSH against OpenSSH's sshd (a plain process serving the git server's repositories):
// the git layer, host key checks, the operator with Flux-format Secrets, and the commands.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { TESTAPP_IMAGE } from "../../hack/env/node.js";
import { clusterBackupSyncKind, type ClusterBackupSyncStatus } from "../../src/crds/clusterbackupsync.js";
import { composeDeploymentKind, type ComposeDeploymentStatus } from "../../src/crds/composedeployment.js";
import { datasetAdvertKind, type DatasetAdvertStatus } from "../../src/crds/datasetadvert.js";
import { partitionSyncKind, type PartitionSyncStatus } from "../../src/crds/partitionsync.js";
import { serviceHandshakeKind, type ServiceHandshakeStatus } from "../../src/crds/servicehandshake.js";
import type { GitCredentials } from "../../src/git/auth.js";
import { GitError, GitRepository } from "../../src/git/repo.js";
import { resourceOf, resourcePath, type KubeClient } from "../../src/runtime/kube.js";
import { BackupBucket } from "./fixtures/backups.js";
import { eventually, OperatorProcess, runGitsync } from "./helpers.js";
import { waitForReady, type StatusLike } from "./kstatus.js";
import { adminClient, adminS3, createSecret, env, kubectlOk } from "./setup.js";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const author = { name: "gitsync", email: "gitsync@example.com" };

interface Shs {
  metadata: { generation: number };
  status?: ServiceHandshakeStatus;
}
type Cbs = StatusLike & { status?: ClusterBackupSyncStatus };
type Dsa = StatusLike & { status?: DatasetAdvertStatus };
type Psync = StatusLike & { status?: PartitionSyncStatus };
type Cdep = StatusLike & { status?: ComposeDeploymentStatus };

/** Every file below a folder whose text holds a private key. */
function keyFilesBelow(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => {
    try {
      return readFileSync(path.join(dir, f), "utf8").includes("PRIVATE KEY");
    } catch {
      return false;
    }
  });
}

describe("git over SSH (OpenSSH's sshd)", function () {
  let work: string;
  let counter = 0;
  const ssh = () => env().ssh;
  const credentials = () => ({ identity: ssh().identity(), knownHosts: ssh().knownHosts });
  const repoAt = (url: string, creds: GitCredentials = credentials()): GitRepository => new GitRepository(url, path.join(work, `clone-${counter++}`), creds);

  before(() => (work = mkdtempSync(path.join(os.tmpdir(), "gitsync-ssh-"))));

  async function refusal(repo: GitRepository): Promise<GitError> {
    try {
      await repo.sync({ branch: "main" });
    } catch (err) {
      if (err instanceof GitError) return err;
      throw err;
    }
    return assert.fail("the sync succeeded");
  }

  it("resolves, clones shallow, fetches only what is new and pushes, as native git sees it", async () => {
    env().git.createRepo("ssh-layer", { "README.md": "over ssh\n", "config/app.yaml": "replicas: 1\n" });
    const repo = repoAt(ssh().url("ssh-layer"));
    assert.equal(await repo.resolve({ branch: "main" }), env().git.git("ssh-layer", "rev-parse", "main"));
    const first = await repo.sync({ branch: "main" });
    assert.equal(first.fetched, true);
    assert.equal(await repo.readText(first.commit, "config/app.yaml"), "replicas: 1\n");
    const fetches = repo.stats.fetches;
    assert.equal((await repo.sync({ branch: "main" })).fetched, false);
    assert.equal(repo.stats.fetches, fetches, "no fetch negotiation for an unchanged remote");
    const second = env().git.commitFiles("ssh-layer", { "config/app.yaml": "replicas: 2\n" }, "Scale");
    assert.deepEqual(await repo.sync({ branch: "main" }), { commit: second, fetched: true });
    const pushed = await repo.commit({ branch: "main", author, message: "Over SSH", change: () => Promise.resolve(new Map([["pushed.txt", text("yes\n")]])) });
    assert.equal(env().git.git("ssh-layer", "rev-parse", "main"), pushed.commit);
    assert.equal(env().git.git("ssh-layer", "show", "main:pushed.txt"), "yes");
    assert.equal(env().git.git("ssh-layer", "rev-parse", "main~1"), second, "a fast-forward on the commit fetched over SSH");
  });

  it("reads an scp-like URL, and opens a key behind its passphrase (Flux's password)", async () => {
    env().git.createRepo("ssh-scp", { "a.txt": "1\n" });
    const head = env().git.git("ssh-scp", "rev-parse", "main");
    assert.equal((await repoAt(ssh().scpUrl("ssh-scp")).sync({ branch: "main" })).commit, head);
    const encrypted = { identity: ssh().identity("encrypted"), password: ssh().passphrase, knownHosts: ssh().knownHosts };
    assert.equal((await repoAt(ssh().url("ssh-scp"), encrypted).sync({ branch: "main" })).commit, head);
    const noPassphrase = await refusal(repoAt(ssh().url("ssh-scp"), { identity: ssh().identity("encrypted"), knownHosts: ssh().knownHosts }));
    assert.equal(noPassphrase.kind, "invalid");
    assert.match(noPassphrase.message, /the SSH identity for 127\.0\.0\.1 is encrypted: set password to its passphrase/);
  });

  it("refuses a changed host key before authenticating, naming the host and the key's fingerprint as ssh-keygen prints it", async () => {
    env().git.createRepo("ssh-hostkey", { "a.txt": "1\n" });
    const err = await refusal(repoAt(ssh().url("ssh-hostkey"), { identity: ssh().identity(), knownHosts: ssh().wrongKnownHosts }));
    assert.equal(err.kind, "host-key");
    const native = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", path.join(env().dir, "ssh", "host_ed25519.pub")], { encoding: "utf8" }).split(
      " ",
    )[1];
    assert.ok(err.message.includes(`the host key of [127.0.0.1]:${ssh().port} (${native})`), err.message);
    assert.match(err.message, /refused before any credential was sent/);
  });

  it("refuses an unknown host, a missing known_hosts and a key the server does not accept, each saying what to fix", async () => {
    env().git.createRepo("ssh-refused", { "a.txt": "1\n" });
    const unknown = await refusal(repoAt(ssh().url("ssh-refused"), { identity: ssh().identity(), knownHosts: "other.example ssh-ed25519 AAAA\n" }));
    assert.equal(unknown.kind, "host-key");
    assert.match(unknown.message, new RegExp(`\\[127\\.0\\.0\\.1\\]:${ssh().port} is not in known_hosts: add its host key`));
    const missing = await refusal(repoAt(ssh().url("ssh-refused"), { identity: ssh().identity() }));
    assert.equal(missing.kind, "invalid");
    assert.match(missing.message, /known_hosts is required for SSH/);
    const stranger = await refusal(repoAt(ssh().url("ssh-refused"), { identity: ssh().identity("stranger"), knownHosts: ssh().knownHosts }));
    assert.equal(stranger.kind, "auth");
    assert.match(stranger.message, /the server refused the SSH key/);
    const nowhere = await refusal(repoAt(ssh().url("ssh-no-such-repo")));
    assert.equal(nowhere.kind, "not-found");
    assert.match(nowhere.message, /does not appear to be a git repository/);
    for (const err of [unknown, missing, stranger, nowhere]) assert.ok(!err.message.includes("PRIVATE KEY"));
  });

  it("fails, never hangs or crashes, on a server that hangs up during the handshake, whichever way", async () => {
    // Servers that are not sshd (a port forwarded to the wrong place, a proxy closing the tunnel).
    const behaviours: [string, (socket: Socket) => void, RegExp][] = [
      ["closes at once", (s) => s.destroy(), /Connection lost before handshake/],
      // A reset after the connect and before the greeting: ssh2 emits the reset, then "Connection
      // lost before handshake"; with no listener left for the second, the process died.
      ["resets before its greeting", (s) => setTimeout(() => s.resetAndDestroy(), 50), /ECONNRESET/],
      ["greets, then closes", (s) => (s.write("SSH-2.0-OpenSSH_9.6\r\n"), setTimeout(() => s.destroy(), 50)), /closed before the SSH handshake/],
      ["greets, then sends garbage", (s) => (s.write("SSH-2.0-OpenSSH_9.6\r\n"), setTimeout(() => s.end(Buffer.alloc(64, 7)), 50)), /Bad packet length/],
      ["greets, then resets", (s) => (s.write("SSH-2.0-OpenSSH_9.6\r\n"), s.once("data", () => setTimeout(() => s.resetAndDestroy(), 20))), /ECONNRESET/],
    ];
    for (const [what, behave, expected] of behaviours) {
      const server = createServer(behave);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as AddressInfo).port;
      try {
        const knownHosts = ssh().knownHostsAt("127.0.0.1", port);
        const err = await refusal(repoAt(`ssh://git@127.0.0.1:${port}/repo.git`, { identity: ssh().identity(), knownHosts }));
        assert.equal(err.kind, "network", `${what}: ${err.message}`);
        assert.match(err.message, expected, what);
      } finally {
        server.close();
      }
    }
  });

  it("closes its SSH connection after every operation, and keeps no key file in its folders", async () => {
    const sshdPid = Number(readFileSync(path.join(env().dir, "ssh", "sshd.pid"), "utf8"));
    const sessions = (): string[] => {
      try {
        return execFileSync("pgrep", ["-P", String(sshdPid)], { encoding: "utf8" })
          .trim()
          .split("\n")
          .filter(Boolean);
      } catch {
        return [];
      }
    };
    const repo = repoAt(ssh().url("ssh-layer"));
    await repo.sync({ branch: "main" });
    await repo.resolve({ branch: "main" });
    await refusal(repoAt(ssh().url("ssh-no-such-repo")));
    await eventually(() => Promise.resolve(assert.deepEqual(sessions(), [], "no sshd session left open")), 10_000);
    assert.deepEqual(keyFilesBelow(work), []);
  });

  describe("the operator with Flux-format Secrets", () => {
    let kube: KubeClient;
    let operator: OperatorProcess;
    const ns = "ssh-e2e";

    before(async () => {
      kube = adminClient();
      await kubectlOk(["create", "namespace", ns]);
      await createSecret(ns, "deploy-key", { identity: ssh().identity(), known_hosts: ssh().knownHosts });
      await createSecret(ns, "changed-host", { identity: ssh().identity(), known_hosts: ssh().wrongKnownHosts });
      await createSecret(ns, "s3", { accesskey: env().s3.accessKey, secretkey: env().s3.secretKey });
      operator = OperatorProcess.start({ entry: "gitsync" });
    });

    after(async () => {
      await operator.stop();
      kube.close();
    });

    afterEach(function () {
      if (this.currentTest?.state === "failed") process.stderr.write(`\nOperator log:\n${operator.lines.slice(-40).join("\n")}\n`);
    });

    const get = (name: string): Promise<Shs> => kube.request<Shs>("GET", resourcePath(resourceOf(serviceHandshakeKind), ns, name));

    function apply(name: string, urls: string[], secret: string, writeBack = false): Promise<string> {
      const services = urls.map((url) => ({ source: { url, ref: { branch: "main" }, secretRef: { name: secret } } }));
      const spec = { services, interval: "2s", writeBack };
      return kubectlOk(
        ["apply", "-f", "-"],
        stringify({ apiVersion: "gitsync.dev/v1beta1", kind: "ServiceHandshake", metadata: { name, namespace: ns }, spec }),
      );
    }

    function seed(prefix: string): void {
      env().git.createRepo(`${prefix}-pricing`, {
        "service.yaml": "metadata:\n  name: pricing\n  version: 1.0.0\ndesiredState:\n  stock:\n    sync: strict\n    version: 2.1.0\n",
      });
      env().git.createRepo(`${prefix}-stock`, { "service.yaml": "metadata:\n  name: stock\n  version: 2.1.0\n" });
    }

    it("is Ready over ssh:// and scp-like URLs, picks up a new commit, and writes back over SSH", async () => {
      seed("sshop");
      await apply("over-ssh", [ssh().url("sshop-pricing"), ssh().scpUrl("sshop-stock")], "deploy-key", true);
      await waitForReady(() => get("over-ssh"), "True", "HandshakeSucceeded", 60_000);
      await eventually(() => Promise.resolve(assert.match(env().git.git("sshop-pricing", "show", "main:service.yaml"), /actualState:/)), 30_000);
      const bumped = env().git.commitFiles("sshop-stock", { "service.yaml": "metadata:\n  name: stock\n  version: 2.2.0\n" }, "Bump");
      const failing = await waitForReady(() => get("over-ssh"), "False", "HandshakeFailed", 30_000);
      // The bump, or the operator's own write-back pushed on top of it (its push raced the bump, and was re-applied at the new head).
      const revision = failing.status?.services?.find((s) => s.name === "stock")?.revision ?? "";
      assert.doesNotThrow(
        () => env().git.git("sshop-stock", "merge-base", "--is-ancestor", bumped, revision),
        `${revision} does not contain the bump ${bumped}`,
      );
      const everything = JSON.stringify(failing) + operator.lines.join("\n");
      assert.ok(!everything.includes("PRIVATE KEY"), "no key in status or logs");
    });

    /** Any kind's object, read as the admin. */
    const read =
      <T extends StatusLike>(kind: Parameters<typeof resourceOf>[0], name: string) =>
      (): Promise<T> =>
        kube.request<T>("GET", resourcePath(resourceOf(kind), ns, name));
    const applyDoc = (kind: string, name: string, spec: Record<string, unknown>): Promise<string> =>
      kubectlOk(["apply", "-f", "-"], stringify({ apiVersion: "gitsync.dev/v1beta1", kind, metadata: { name, namespace: ns }, spec }));
    const s3Source = (bucket: string, prefix?: string) => ({
      endpoint: env().s3.endpoint,
      bucket,
      insecure: true,
      secretRef: { name: "s3" },
      ...(prefix ? { prefix } : {}),
    });

    it("ClusterBackupSync pushes its commits over SSH", async () => {
      const s3 = adminS3();
      try {
        const { bucket } = await BackupBucket.create(s3, "ssh-cbs");
        env().git.createRepo("ssh-cbs");
        await applyDoc("ClusterBackupSync", "ssh-cbs", {
          interval: "2s",
          source: s3Source("ssh-cbs"),
          destination: { url: ssh().url("ssh-cbs"), branch: "main", secretRef: { name: "deploy-key" } },
        });
        const first = await waitForReady(read<Cbs>(clusterBackupSyncKind, "ssh-cbs"), "True", "Synced", 60_000);
        assert.equal(first.status?.lastCommit, env().git.git("ssh-cbs", "rev-parse", "main"));
        await bucket.put("clusterbackup/staging/web/configmaps/configmap-9.yaml", "kind: ConfigMap\n");
        const next = await eventually(async () => {
          const cbs = await read<Cbs>(clusterBackupSyncKind, "ssh-cbs")();
          assert.notEqual(cbs.status?.lastCommit, first.status?.lastCommit);
          return cbs;
        }, 30_000);
        assert.equal(next.status?.lastCommit, env().git.git("ssh-cbs", "rev-parse", "main"));
        assert.match(env().git.git("ssh-cbs", "ls-tree", "-r", "--name-only", "main"), /configmap-9\.yaml/);
      } finally {
        s3.destroy();
      }
    });

    it("DatasetAdvert advertises a repository read over SSH, and its next commit", async () => {
      const datasets = env().datasets!;
      await createSecret(ns, "etcd", { username: datasets.operator.username, password: datasets.operator.password, "ca.crt": datasets.caCert });
      env().git.createRepo("ssh-dataset", { "data.csv": "a,1\n" });
      await applyDoc("DatasetAdvert", "ssh-dataset", {
        interval: "2s",
        hub: "ssh-hub",
        operator: "lab-ssh",
        ttl: "1h",
        source: { url: ssh().url("ssh-dataset"), ref: { branch: "main" }, secretRef: { name: "deploy-key" } },
        etcd: { endpoints: [datasets.endpoint], secretRef: { name: "etcd" } },
      });
      const shortOf = (commit: string): string => `main@sha1:${commit.slice(0, 8)}`;
      await eventually(async () => {
        const dsa = await waitForReady(read<Dsa>(datasetAdvertKind, "ssh-dataset"), "True", "Advertised", 60_000);
        assert.equal(dsa.status?.advertisedCommitShort, shortOf(env().git.git("ssh-dataset", "rev-parse", "main")));
      }, 60_000);
      const next = env().git.commitFiles("ssh-dataset", { "data.csv": "a,1\nb,2\n" }, "More data");
      await eventually(async () => assert.equal((await read<Dsa>(datasetAdvertKind, "ssh-dataset")()).status?.advertisedCommitShort, shortOf(next)), 30_000);
    });

    it("PartitionSync ships from an SSH source and pushes to an SSH destination", async () => {
      const s3 = adminS3();
      try {
        await s3.send(new CreateBucketCommand({ Bucket: "ssh-partition" }));
        const identity = await generateIdentity();
        await createSecret(ns, "age", { "identity.agekey": identity });
        env().git.createRepo("open/ssh-app", { "README.md": "app\n" });
        env().git.createRepo("inside/ssh-app");
        const bucket = s3Source("ssh-partition");
        await applyDoc("PartitionSync", "ssh-producer", {
          interval: "2s",
          role: "Producer",
          bucket,
          recipients: [await identityToRecipient(identity)],
          repos: [
            {
              source: { url: ssh().url("open/ssh-app"), branch: "main", secretRef: { name: "deploy-key" } },
              destination: { group: "inside", project: "ssh-app", branch: "main" },
            },
          ],
        });
        const base = `ssh://${ssh().user}@127.0.0.1:${ssh().port}${env().git.root}`;
        await applyDoc("PartitionSync", "ssh-consumer", {
          interval: "2s",
          role: "Consumer",
          bucket,
          identitySecretRef: { name: "age" },
          destination: { baseUrl: base, secretRef: { name: "deploy-key" } },
        });
        const pushed = (commit: string) => async (): Promise<void> => {
          const psync = await read<Psync>(partitionSyncKind, "ssh-consumer")();
          assert.equal(psync.status?.repos?.find((r) => r.destination === "inside/ssh-app@main")?.pushedCommit, commit, JSON.stringify(psync.status?.repos));
        };
        await eventually(pushed(env().git.git("open/ssh-app", "rev-parse", "main")), 90_000);
        const next = env().git.commitFiles("open/ssh-app", { "NEW.md": "new\n" }, "New");
        await eventually(pushed(next), 60_000);
        assert.equal(env().git.git("inside/ssh-app", "rev-parse", "main"), next);
      } finally {
        s3.destroy();
      }
    });

    it("ComposeDeployment deploys a project read over SSH, and rolls its next commit", async () => {
      const compose = (greeting: string): string =>
        `services:\n  web:\n    image: ${TESTAPP_IMAGE}\n    pull_policy: never\n    environment:\n      GREETING: ${greeting}\n`;
      env().git.createRepo("ssh-compose", { "compose.yaml": compose("hi") });
      await applyDoc("ComposeDeployment", "ssh-compose", {
        interval: "3s",
        source: { url: ssh().url("ssh-compose"), ref: { branch: "main" }, secretRef: { name: "deploy-key" } },
      });
      const applied = (commit: string) => async (): Promise<void> => {
        const cdep = await read<Cdep>(composeDeploymentKind, "ssh-compose")();
        assert.equal(cdep.status?.lastAppliedRevision, commit);
        assert.equal(cdep.status?.conditions?.find((c) => c.type === "Ready")?.status, "True");
      };
      await eventually(applied(env().git.git("ssh-compose", "rev-parse", "main")), 180_000);
      const next = env().git.commitFiles("ssh-compose", { "compose.yaml": compose("hello") }, "Greet");
      await eventually(applied(next), 180_000);
    });

    it("stalls on a changed or unknown host key, naming the host and fingerprint, and retries a refused key with backoff", async () => {
      await createSecret(ns, "unknown-host", { identity: ssh().identity(), known_hosts: "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE\n" });
      await createSecret(ns, "wrong-key", { identity: ssh().identity("stranger"), known_hosts: ssh().knownHosts });
      await createSecret(ns, "no-known-hosts", { identity: ssh().identity() });
      seed("sshhk");
      const urls = [ssh().url("sshhk-pricing"), ssh().url("sshhk-stock")];
      await apply("changed-host", urls, "changed-host");
      await apply("unknown-host", urls, "unknown-host");
      await apply("wrong-key", urls, "wrong-key");
      await apply("no-known-hosts", urls, "no-known-hosts");
      const fetchFailed = (shs: Shs): string => shs.status?.conditions?.find((c) => c.type === "FetchFailed")?.message ?? "";
      const stalled = (shs: Shs): boolean => Boolean(shs.status?.conditions?.some((c) => c.type === "Stalled" && c.status === "True"));
      const changed = await waitForReady(() => get("changed-host"), "False", "HostKeyRejected", 60_000);
      assert.ok(stalled(changed));
      assert.match(fetchFailed(changed), /the host key of \[127\.0\.0\.1\]:\d+ \(SHA256:[A-Za-z0-9+/]{43}\) does not match/);
      const unknown = await waitForReady(() => get("unknown-host"), "False", "HostKeyRejected", 60_000);
      assert.ok(stalled(unknown));
      assert.match(fetchFailed(unknown), /\[127\.0\.0\.1\]:\d+ is not in known_hosts: add its host key/);
      const missing = await waitForReady(() => get("no-known-hosts"), "False", "InvalidSource", 60_000);
      assert.match(fetchFailed(missing), /known_hosts is required for SSH/);
      const refused = await waitForReady(() => get("wrong-key"), "False", "FetchFailed", 60_000);
      assert.match(fetchFailed(refused), /the server refused the SSH key/);
      assert.equal(refused.status?.conditions?.find((c) => c.type === "Reconciling")?.reason, "ProgressingWithRetry");
      const everything = JSON.stringify([changed, unknown, missing, refused]) + operator.lines.join("\n");
      assert.ok(!everything.includes("PRIVATE KEY"), "no key in status or logs");
    });
  });

  describe("the commands", () => {
    it("gitsync handshake check reads scp-like URLs with GIT_SSH_KEY_FILE and GIT_KNOWN_HOSTS", async () => {
      env().git.createRepo("sshcli-pricing", { "service.yaml": "metadata: {name: pricing}\ndesiredState:\n  stock: {version: 2.1.0}\n" });
      env().git.createRepo("sshcli-stock", { "service.yaml": "metadata: {name: stock, version: 2.1.0}\n" });
      writeFileSync(path.join(work, "known_hosts"), ssh().knownHosts);
      const vars = { PATH: process.env.PATH, HOME: work, GIT_SSH_KEY_FILE: ssh().identityFile(), GIT_KNOWN_HOSTS: path.join(work, "known_hosts") };
      const ok = await runGitsync(["handshake", "check", `${ssh().scpUrl("sshcli-pricing")}#main`, ssh().scpUrl("sshcli-stock")], vars);
      assert.equal(ok.code, 0, ok.stderr + ok.stdout);
      assert.match(ok.stdout, /Handshake succeeded \(strict\): 2\/2 services agree/);
      const noHosts = await runGitsync(["handshake", "check", ssh().scpUrl("sshcli-stock")], { ...vars, GIT_KNOWN_HOSTS: "" });
      assert.equal(noHosts.code, 2, noHosts.stderr);
      assert.match(noHosts.stderr, /known_hosts is required for SSH/);
    });

    it("gitsync compose plan takes an scp-like URL#REF", async () => {
      env().git.createRepo("sshcli-compose", { "compose.yaml": "services:\n  web:\n    image: nginx:1.27\n" });
      const old = env().git.git("sshcli-compose", "rev-parse", "main");
      env().git.commitFiles("sshcli-compose", { "compose.yaml": "services:\n  web:\n    image: nginx:1.28\n" }, "Bump web");
      writeFileSync(path.join(work, "known_hosts"), ssh().knownHosts);
      const vars = { PATH: process.env.PATH, HOME: work, GIT_SSH_KEY_FILE: ssh().identityFile(), GIT_KNOWN_HOSTS: path.join(work, "known_hosts") };
      const plan = await runGitsync(["compose", "plan", `${ssh().scpUrl("sshcli-compose")}#${old}`, `${ssh().scpUrl("sshcli-compose")}#main`], vars);
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /web/);
      assert.match(plan.stdout, /roll/i);
    });

    it("gitsync dataset publish pushes a folder whose origin is an SSH URL, and import clones it over SSH", async () => {
      const datasets = env().datasets!;
      env().git.createRepo("sshcli-dataset", { "readme.txt": "data\n" });
      const folder = path.join(work, "dataset-folder");
      execFileSync("git", ["clone", "--quiet", path.join(env().git.root, "sshcli-dataset.git"), folder]);
      execFileSync("git", ["-C", folder, "remote", "set-url", "origin", ssh().url("sshcli-dataset")]);
      writeFileSync(path.join(folder, "values.csv"), "k,v\n1,2\n");
      writeFileSync(path.join(work, "known_hosts"), ssh().knownHosts);
      const vars = {
        PATH: process.env.PATH,
        HOME: work,
        ETCD_ENDPOINTS: datasets.endpoint,
        ETCD_USERNAME: datasets.operator.username,
        ETCD_PASSWORD: datasets.operator.password,
        ETCD_CACERT: datasets.caFile,
        GIT_SSH_KEY_FILE: ssh().identityFile(),
        GIT_KNOWN_HOSTS: path.join(work, "known_hosts"),
      };
      const published = await runGitsync(["dataset", "publish", "--repo", folder, "--hub", "ssh-cli", "--operator", "lab-s"], vars);
      assert.equal(published.code, 0, published.stderr + published.stdout);
      const head = env().git.git("sshcli-dataset", "rev-parse", "main");
      assert.equal(env().git.git("sshcli-dataset", "show", "main:values.csv"), "k,v\n1,2");
      const date = new Date().toISOString().slice(0, 10);
      const target = path.join(work, "imported");
      const withoutSsh = Object.fromEntries(Object.entries(vars).filter(([name]) => !["GIT_SSH_KEY_FILE", "GIT_KNOWN_HOSTS"].includes(name)));
      const flags = ["--ssh-key", ssh().identityFile(), "--known-hosts", path.join(work, "known_hosts")];
      const imported = await runGitsync(["dataset", "import", `ssh-cli/${date}/lab-s`, target, ...flags], withoutSsh);
      assert.equal(imported.code, 0, imported.stderr + imported.stdout);
      assert.equal(execFileSync("git", ["-C", target, "rev-parse", "HEAD"], { encoding: "utf8" }).trim(), head);
      assert.deepEqual(keyFilesBelow(target), []);
    });

    it("gitsync backup sync is a drop-in for the old job's SSH_KEY_PATH and an SSH GIT_REPOSITORY", async () => {
      const s3: S3Client = adminS3();
      try {
        const bucket = `ssh-backups-${Date.now().toString(36)}`;
        await BackupBucket.create(s3, bucket);
        env().git.createRepo("sshcli-backup");
        writeFileSync(path.join(work, "known_hosts"), ssh().knownHosts);
        const vars = {
          PATH: process.env.PATH,
          HOME: work,
          MINIO_ENDPOINT: env().s3.endpoint.replace("http://", ""),
          MINIO_ACCESS_KEY: env().s3.accessKey,
          MINIO_SECRET_KEY: env().s3.secretKey,
          MINIO_BUCKET: bucket,
          MINIO_USE_SSL: "false",
          GIT_REPOSITORY: ssh().url("sshcli-backup"),
          GIT_BRANCH: "main",
          GIT_USERNAME: "backup",
          GIT_EMAIL: "backup@example.com",
          SSH_KEY_PATH: ssh().identityFile(),
          GIT_KNOWN_HOSTS: path.join(work, "known_hosts"),
          WORK_DIR: mkdtempSync(path.join(os.tmpdir(), "gitsync-ssh-backup-")),
          RETRY_ATTEMPTS: "1",
        };
        const run = await runGitsync(["backup", "sync"], vars);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        const files = env().git.git("sshcli-backup", "ls-tree", "-r", "--name-only", "main").split("\n");
        assert.equal(files.filter((f) => f.endsWith(".yaml") && !f.startsWith(".gitsync/")).length, 72);
        assert.deepEqual(keyFilesBelow(vars.WORK_DIR), [], "no key file left in WORK_DIR");
        assert.ok(!(run.stdout + run.stderr).includes("PRIVATE KEY"));
      } finally {
        s3.destroy();
      }
    });
  });
});
