// The whole local environment on 127.0.0.1, with free ports and a temp folder: etcd,
// kube-apiserver (token auth, RBAC, its own self-signed serving cert),
// kube-controller-manager, versitygw as the S3 server, and a git smart-HTTP server.
// Used by the e2e setup and by `make demo`; it kills everything it started on stop, on
// test failure (process exit) and on Ctrl-C.

import { execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { serverCertificate, type ServerCert } from "./certs.js";
import { DatasetEtcd } from "./dataset-etcd.js";
import { BridgeForward } from "./forward.js";
import { GitServer } from "./git-server.js";
import { BRIDGE_IP, coreDnsManifests, Node, NODE_NAME, SERVICE_CIDR } from "./node.js";
import { freePort, forgetOnExit, ManagedProcess, portOpen, removeOnExit, toolPaths } from "./processes.js";
import { Podman } from "./podman.js";
import { SshServer } from "./ssh-server.js";

export interface Identity {
  user: string;
  token: string;
  kubeconfig: string;
}

export interface EnvironmentOptions {
  /** Keep the temp folder after stop (for debugging). */
  keep?: boolean;
  /** Extra token-auth users, e.g. the operator's own identity. */
  users?: string[];
  /** Also start the second etcd, with TLS and auth, where DatasetAdverts are published. */
  datasets?: boolean;
  /**
   * Also run a real node (containerd, kubelet, kube-scheduler, kube-proxy, CoreDNS) with pods
   * on a bridge of its own; the API server then listens on the bridge's address, where pods
   * reach it too.
   */
  node?: boolean;
  /** Also serve podman's Docker-compatible API (for testcontainers), with the MinIO image loaded. */
  podman?: boolean;
  /** Fixed ports for the git and S3 servers (the demo's samples name them); default free ones. */
  gitPort?: number;
  s3Port?: number;
  datasetsPort?: number;
  sshPort?: number;
  log?: (line: string) => void;
}

export class Environment {
  readonly dir: string;
  readonly tools: Record<string, string>;
  readonly admin: Identity;
  readonly users = new Map<string, Identity>();
  readonly s3 = { endpoint: "", region: "us-east-1", accessKey: "gitsync-test-access", secretKey: randomBytes(16).toString("hex") };
  readonly git: GitServer;
  /** OpenSSH's sshd serving the git server's repositories over SSH. */
  readonly ssh: SshServer;
  /** The datasets etcd; only with options.datasets. */
  readonly datasets: DatasetEtcd | undefined;
  /** The node; only with options.node. */
  readonly node: Node | undefined;
  /** Podman's API and the MinIO image it holds; only with options.podman. */
  readonly podman: Podman | undefined;
  minioImage = "";
  /** Git (HTTP and SSH) and S3 served to pods on the bridge's address, with a node. */
  private readonly forward = new BridgeForward();
  /** The identities of the node's components (token users). */
  private readonly system = new Map<string, Identity & { groups: string[] }>();
  etcdEndpoint = "";
  apiServerUrl = "";
  private readonly processes = new Map<string, ManagedProcess>();
  private readonly logDir: string;

  constructor(private readonly options: EnvironmentOptions = {}) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), "gitsync-env-"));
    if (!options.keep) removeOnExit(this.dir);
    this.logDir = path.join(this.dir, "logs");
    mkdirSync(this.logDir);
    this.tools = toolPaths();
    this.admin = this.identity("admin");
    for (const user of options.users ?? []) this.users.set(user, this.identity(user));
    this.git = new GitServer(path.join(this.dir, "git"), "gitsync", randomBytes(12).toString("hex"));
    this.ssh = new SshServer(path.join(this.dir, "ssh"), this.git.root, this.logDir);
    this.datasets =
      options.datasets && this.tools.etcd
        ? new DatasetEtcd(path.join(this.dir, "etcd-datasets"), this.tools.etcd, this.logDir, options.datasetsPort)
        : undefined;
    this.node = options.node ? this.nodeWithIdentities() : undefined;
    this.podman = options.podman ? new Podman(path.join(this.dir, "podman"), this.logDir) : undefined;
  }

  private nodeWithIdentities(): Node {
    for (const [name, user, groups] of [
      ["kubelet", `system:node:${NODE_NAME}`, ["system:nodes"]],
      ["proxy", "system:kube-proxy", []],
      ["scheduler", "system:kube-scheduler", []],
    ] as const) {
      this.system.set(name, { ...this.identity(user.replace(/:/g, "-")), user, groups: [...groups] });
    }
    const kubeconfig = (name: string): string => this.system.get(name)?.kubeconfig ?? "";
    return new Node({
      dir: this.dir,
      logDir: this.logDir,
      tools: this.tools,
      caFile: path.join(this.dir, "apiserver-certs", "ca.crt"),
      kubeconfigs: {
        kubelet: kubeconfig("kubelet"),
        proxy: kubeconfig("proxy"),
        scheduler: kubeconfig("scheduler"),
        admin: this.admin.kubeconfig,
      },
    });
  }

  async start(): Promise<void> {
    const started = Date.now();
    // What undoing the node needs is recorded before the bridge exists, for the exit hook and the supervisor.
    this.node?.prepare();
    if (this.node) Node.createBridge();
    await Promise.all([this.startEtcd(), this.startS3(), this.git.start(this.options.gitPort), this.ssh.start(this.options.sshPort), this.datasets?.start()]);
    await this.startApiServer();
    await this.allowIssuerDiscovery();
    await this.startControllerManager();
    if (this.podman) {
      await this.podman.start();
      const minio = this.tools.minio;
      if (!minio) throw new Error("hack/tools.sh did not build minio");
      this.minioImage = await this.podman.binaryImage("minio", minio, path.basename(minio).replace(/^minio-/, ""), path.dirname(minio));
      // testcontainers (in this process) reaches this podman; its reaper image cannot be had
      // here, and stop() removes every container instead.
      process.env.DOCKER_HOST = this.podman.dockerHost;
      process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
    }
    if (this.node) {
      await this.startNode(this.node);
      const served = [this.git.baseUrl, this.s3.endpoint, ...(this.datasets ? [this.datasets.endpoint] : [])];
      for (const url of served) await this.forward.add(BRIDGE_IP, Number(new URL(url).port));
      await this.forward.add(BRIDGE_IP, this.ssh.port);
    }
    this.say(
      `Environment up in ${((Date.now() - started) / 1000).toFixed(1)}s: API server ${this.apiServerUrl}, S3 ${this.s3.endpoint}, git ${this.git.baseUrl}, git over SSH on 127.0.0.1:${this.ssh.port}`,
    );
  }

  async stop(): Promise<void> {
    await this.podman?.stop();
    await this.forward.close();
    await this.node?.stop();
    await Promise.all([...this.processes.values()].map((p) => p.stop()));
    await this.datasets?.stop();
    await this.git.stop();
    await this.ssh.stop();
    if (!this.options.keep) {
      rmSync(this.dir, { recursive: true, force: true });
      forgetOnExit(this.dir);
    }
  }

  /** Stops only kube-apiserver (etcd keeps the data), to test reconnection. */
  async stopApiServer(): Promise<void> {
    await this.processes.get("kube-apiserver")?.stop();
  }

  /** Starts kube-apiserver again on the same port with the same certificates. */
  async startApiServer(): Promise<void> {
    const port = this.apiServerUrl ? Number(new URL(this.apiServerUrl).port) : await freePort();
    const address = this.node ? BRIDGE_IP : "127.0.0.1";
    this.apiServerUrl = `https://${address}:${port}`;
    const cert = this.apiServerCert();
    const proc = this.spawn("kube-apiserver", [
      `--etcd-servers=${this.etcdEndpoint}`,
      `--bind-address=${address}`,
      `--advertise-address=${address}`,
      `--secure-port=${port}`,
      `--tls-cert-file=${cert.cert}`,
      `--tls-private-key-file=${cert.key}`,
      `--token-auth-file=${this.tokenFile()}`,
      ...(this.node
        ? [
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--endpoint-reconciler-type=lease",
            "--kubelet-preferred-address-types=InternalIP",
          ]
        : ["--authorization-mode=RBAC", "--endpoint-reconciler-type=none"]),
      // The API server is its own OpenID provider (discovery and JWKS at its URL), so that MinIO's
      // STS trusts its ServiceAccount tokens as IRSA's STS trusts EKS's; the in-cluster name is still accepted.
      `--service-account-issuer=${this.apiServerUrl}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-jwks-uri=${this.apiServerUrl}/openid/v1/jwks`,
      `--service-account-key-file=${this.serviceAccountKey().publicKey}`,
      `--service-account-signing-key-file=${this.serviceAccountKey().privateKey}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      "--enable-priority-and-fairness=false",
      "--profiling=false",
      // Lists and watches of the operator's kinds, so that a test can see which replica asked for what.
      `--audit-policy-file=${this.auditPolicy()}`,
      `--audit-log-path=${this.auditLog}`,
      "--audit-log-format=json",
    ]);
    await proc.waitUntil(async () => (await this.kubectl(["get", "--raw", "/readyz"])).code === 0, 60_000);
  }

  /**
   * Lets anyone read the API server's OpenID discovery and keys, as a cluster whose issuer an
   * STS trusts (IRSA) publishes them: MinIO fetches them without credentials.
   */
  private async allowIssuerDiscovery(): Promise<void> {
    await this.kubectlOk([
      "create",
      "clusterrolebinding",
      "gitsync-env-oidc-discovery",
      "--clusterrole=system:service-account-issuer-discovery",
      "--group=system:unauthenticated",
    ]);
  }

  /** The API server as an OpenID provider: its discovery URL, and the CA file a client must trust for it. */
  get openIdProvider(): { configUrl: string; caFile: string } {
    return { configUrl: `${this.apiServerUrl}/.well-known/openid-configuration`, caFile: path.join(this.dir, "apiserver-certs", "ca.crt") };
  }

  /** Where the API server logs every list and watch of the gitsync kinds (one JSON event a line). */
  get auditLog(): string {
    return path.join(this.logDir, "audit.log");
  }

  private auditPolicy(): string {
    const file = path.join(this.dir, "audit-policy.yaml");
    const policy = {
      apiVersion: "audit.k8s.io/v1",
      kind: "Policy",
      omitStages: ["RequestReceived"],
      rules: [{ level: "Metadata", verbs: ["list", "watch"], resources: [{ group: "gitsync.dev" }, { group: "e2e.gitsync.dev" }] }, { level: "None" }],
    };
    writeFileSync(file, stringify(policy));
    return file;
  }

  /** Runs kubectl as the admin (or another identity); never throws, returns code and output. */
  kubectl(args: string[], identity: Identity = this.admin, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = execFile(
        this.tools.kubectl ?? "kubectl",
        [`--kubeconfig=${identity.kubeconfig}`, ...args],
        { maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
        },
      );
      if (input !== undefined) child.stdin?.end(input);
    });
  }

  /** Applies the generated CRDs (deploy/crds) and any extra ones with server-side apply, and waits until they are served. */
  async installCrds(extra: object[] = []): Promise<void> {
    const dir = path.resolve(import.meta.dirname, "../../../deploy/crds");
    const docs = (existsSync(dir) ? readdirSync(dir) : []).filter((f) => f.endsWith(".yaml")).map((f) => readFileSync(path.join(dir, f), "utf8"));
    docs.push(...extra.map((crd) => stringify(crd)));
    await this.kubectlOk(["apply", "--server-side", "--field-manager=gitsync-env", "-f", "-"], docs.join("\n---\n"));
    await this.kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
  }

  /** A Secret holding the git server's username and password (basic auth), as every kind's secretRef reads it. */
  async createGitSecret(name: string, namespace = "default"): Promise<void> {
    await this.kubectlOk([
      "-n",
      namespace,
      "create",
      "secret",
      "generic",
      name,
      `--from-literal=username=${this.git.username}`,
      `--from-literal=password=${this.git.password}`,
    ]);
  }

  /** kubectl as the admin that throws with kubectl's stderr on failure. */
  async kubectlOk(args: string[], input?: string): Promise<string> {
    const result = await this.kubectl(args, this.admin, input);
    if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  }

  /** The log tail of every process, for a failing test's report. */
  logs(lines = 20): string {
    return [...this.processes.values(), ...(this.datasets ? [this.datasets.process] : [])]
      .flatMap((p) => (p ? [`--- ${p.name} ---\n${p.tail(lines)}`] : []))
      .join("\n");
  }

  private async startEtcd(): Promise<void> {
    const [client, peer] = [await freePort(), await freePort()];
    this.etcdEndpoint = `http://127.0.0.1:${client}`;
    const proc = this.spawn("etcd", [
      "--name=gitsync-test",
      `--data-dir=${path.join(this.dir, "etcd")}`,
      `--listen-client-urls=${this.etcdEndpoint}`,
      `--advertise-client-urls=${this.etcdEndpoint}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=gitsync-test=http://127.0.0.1:${peer}`,
      "--unsafe-no-fsync",
      "--log-level=warn",
    ]);
    await proc.waitUntil(async () => (await fetch(`${this.etcdEndpoint}/health`)).ok, 30_000);
  }

  /** Stops only the S3 server (its data stays), to test outages. */
  async stopS3(): Promise<void> {
    await this.processes.get("versitygw")?.stop();
  }

  /** Starts the S3 server, again on the same port and data after stopS3(). */
  async startS3(): Promise<void> {
    const port = this.s3.endpoint ? Number(new URL(this.s3.endpoint).port) : (this.options.s3Port ?? (await freePort()));
    this.s3.endpoint = `http://127.0.0.1:${port}`;
    const data = path.join(this.dir, "s3");
    mkdirSync(data, { recursive: true });
    const proc = this.spawn("versitygw", [
      "--access",
      this.s3.accessKey,
      "--secret",
      this.s3.secretKey,
      "--port",
      `127.0.0.1:${port}`,
      "--quiet",
      "posix",
      data,
    ]);
    // Any HTTP answer (403 for an unsigned request) means the gateway serves.
    await proc.waitUntil(async () => (await fetch(this.s3.endpoint)).status > 0, 30_000);
  }

  private async startControllerManager(): Promise<void> {
    const port = await freePort();
    const kubeconfig = this.admin.kubeconfig;
    const proc = this.spawn("kube-controller-manager", [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      `--cert-dir=${path.join(this.dir, "kcm-certs")}`,
      "--leader-elect=false",
      `--service-account-private-key-file=${this.serviceAccountKey().privateKey}`,
      `--root-ca-file=${path.join(this.dir, "apiserver-certs", "ca.crt")}`,
      // The node registers with the not-ready taint: with a node, nodelifecycle lifts it.
      `--controllers=*,-nodeipam,${this.node ? "" : "-nodelifecycle,"}-cloud-node-lifecycle,-route,-service,-persistentvolume-binder,-attachdetach,-persistentvolume-expander`,
      "--profiling=false",
    ]);
    // It serves HTTPS with a certificate of its own: an open port means it is up.
    await proc.waitUntil(() => portOpen(port), 60_000);
  }

  private spawn(name: string, args: string[]): ManagedProcess {
    const binary = this.tools[name];
    if (!binary) throw new Error(`hack/tools.sh did not build ${name}`);
    const proc = new ManagedProcess(name, binary, args, this.logDir);
    this.processes.set(name, proc);
    proc.start();
    return proc;
  }

  private identity(user: string): Identity {
    const token = randomBytes(24).toString("hex");
    const kubeconfig = path.join(this.dir, `${user}.kubeconfig`);
    return { user, token, kubeconfig };
  }

  private tokenFile(): string {
    const file = path.join(this.dir, "tokens.csv");
    const rows = [`${this.admin.token},${this.admin.user},uid-admin,"system:masters"`];
    for (const id of this.users.values()) rows.push(`${id.token},${id.user},uid-${id.user},"system:authenticated"`);
    for (const id of this.system.values())
      rows.push(`${id.token},${id.user},uid-${id.user.replace(/:/g, "-")},"${["system:authenticated", ...id.groups].join(",")}"`);
    writeFileSync(file, `${rows.join("\n")}\n`);
    for (const id of [this.admin, ...this.users.values(), ...this.system.values()]) writeFileSync(id.kubeconfig, this.kubeconfigFor(id));
    return file;
  }

  private kubeconfigFor(id: Identity): string {
    const ca = path.join(this.dir, "apiserver-certs", "ca.crt");
    return [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      `- name: gitsync-test`,
      "  cluster:",
      `    server: ${this.apiServerUrl}`,
      `    certificate-authority: ${ca}`,
      "users:",
      `- name: ${id.user}`,
      "  user:",
      `    token: ${id.token}`,
      "contexts:",
      `- name: ${id.user}@gitsync-test`,
      "  context:",
      "    cluster: gitsync-test",
      `    user: ${id.user}`,
      "    namespace: default",
      `current-context: ${id.user}@gitsync-test`,
      "",
    ].join("\n");
  }

  /** The API server's serving certificate, for the names host clients and pods use. Made once. */
  private apiServerCert(): ServerCert {
    const dir = path.join(this.dir, "apiserver-certs");
    const made = { ca: path.join(dir, "ca.crt"), cert: path.join(dir, "apiserver.crt"), key: path.join(dir, "apiserver.key") };
    if (existsSync(made.cert)) return made;
    return serverCertificate(dir, "apiserver", {
      ips: ["127.0.0.1", BRIDGE_IP, "10.96.0.1"],
      dns: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
    });
  }

  /** The node, then CoreDNS on it; ready when the node is Ready and cluster DNS serves. */
  private async startNode(node: Node): Promise<void> {
    await node.start();
    await this.kubectlOk(["wait", "--for=condition=Ready", `node/${NODE_NAME}`, "--timeout=120s"]);
    const manifests = coreDnsManifests()
      .map((m) => stringify(m))
      .join("---\n");
    await this.kubectlOk(["apply", "--server-side", "--field-manager=gitsync-env", "-f", "-"], manifests);
    await this.kubectlOk(["rollout", "status", "-n", "kube-system", "deployment/coredns", "--timeout=120s"]);
  }

  private serviceAccountKey(): { privateKey: string; publicKey: string } {
    const privateKey = path.join(this.dir, "sa.key");
    const publicKey = path.join(this.dir, "sa.pub");
    if (!existsSync(privateKey)) {
      const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
      writeFileSync(privateKey, pair.privateKey.export({ type: "pkcs1", format: "pem" }));
      writeFileSync(publicKey, pair.publicKey.export({ type: "spki", format: "pem" }));
    }
    return { privateKey, publicKey };
  }

  private say(line: string): void {
    (this.options.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
  }

  /** Serves a server of this machine's loopback (a MinIO a suite started) to pods too, at podUrl(url). */
  async forwardToPods(url: string): Promise<string> {
    if (!this.node) throw new Error("the environment runs no node");
    await this.forward.add(BRIDGE_IP, Number(new URL(url).port));
    return this.podUrl(url);
  }

  /** A URL of this environment's git or S3 server as pods reach it (the bridge's address). */
  podUrl(url: string): string {
    if (!this.node) throw new Error("the environment runs no node");
    return url.replace("//127.0.0.1:", `//${BRIDGE_IP}:`);
  }

  /** The CA that signed the API server's certificate (PEM). */
  caCert(): string {
    return readFileSync(path.join(this.dir, "apiserver-certs", "ca.crt"), "utf8");
  }
}
