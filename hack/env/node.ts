// A real node for the local environment: containerd (Debian's, with runc behind a wrapper),
// the kubelet, kube-scheduler and kube-proxy (iptables) on this machine, pods on a bridge of
// their own, and CoreDNS as a pod behind the kube-dns Service (coreDnsManifests). Everything it creates lives under its folder or is undone by stop(): containers,
// mounts, network namespaces, the bridge and the iptables rules.
//
// Two facts of these machines are handled here: a negative oom_score_adj is refused (the
// runc wrapper raises it to 0), and images cannot be pulled (they are imported with ctr).

import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stringify } from "yaml";
import { binaryImage, goProgramImage } from "./images.js";
import { cleanupOnExit, freePort, killTrees, ManagedProcess, portOpen, unmountWhere } from "./processes.js";

export const BRIDGE = "gitsync0";
export const BRIDGE_IP = "10.88.0.1";
export const POD_CIDR = "10.88.0.0/16";
export const SERVICE_CIDR = "10.96.0.0/24";
export const NODE_NAME = "gitsync-node";
export const PAUSE_IMAGE = "gitsync.local/pause:1";
export const TESTAPP_IMAGE = "gitsync.local/testapp:dev";
export const COREDNS_IMAGE = "gitsync.local/coredns:dev";
/** The cluster DNS Service's address, as kubeadm clusters have it. */
export const CLUSTER_DNS = "10.96.0.10";

export interface NodeSettings {
  dir: string;
  logDir: string;
  tools: Record<string, string>;
  /** Kubeconfigs of the node's identities, written by the environment. */
  kubeconfigs: { kubelet: string; proxy: string; scheduler: string; admin: string };
  /** The API server's CA, for the kubelet's client config. */
  caFile: string;
}

const RUNC_WRAPPER = `#!/bin/sh
# runc, with a negative oomScoreAdj raised to 0: these machines refuse a negative
# oom_score_adj, and runc then fails with "can't get final child's PID from pipe".
prev=""
for arg in "$@"; do
  case "$prev" in
    --bundle|-b) sed -i 's/"oomScoreAdj":-[0-9]*/"oomScoreAdj":0/g' "$arg/config.json" 2>/dev/null ;;
    --process|-p) sed -i 's/"oomScoreAdj":-[0-9]*/"oomScoreAdj":0/g' "$arg" 2>/dev/null ;;
  esac
  case "$arg" in
    --bundle=*) sed -i 's/"oomScoreAdj":-[0-9]*/"oomScoreAdj":0/g' "\${arg#--bundle=}/config.json" 2>/dev/null ;;
  esac
  prev="$arg"
done
exec /usr/sbin/runc "$@"
`;

export class Node {
  readonly socket: string;
  private readonly processes: ManagedProcess[] = [];
  private readonly root: string;
  /** What undoing the node needs, recorded before anything is created (and handed to the supervisor). */
  private cleanup: NodeCleanup | undefined;
  private forgetCleanup: (() => void) | undefined;

  constructor(private readonly settings: NodeSettings) {
    this.root = path.join(settings.dir, "node");
    this.socket = path.join(this.root, "containerd", "containerd.sock");
  }

  /** The bridge pods attach to; the API server binds its address, so it must exist first. */
  static createBridge(): void {
    if (!run("ip", ["link", "show", BRIDGE]).ok) {
      sh("ip", ["link", "add", BRIDGE, "type", "bridge"]);
      sh("ip", ["addr", "add", `${BRIDGE_IP}/16`, "dev", BRIDGE]);
    }
    sh("ip", ["link", "set", BRIDGE, "up"]);
  }

  /**
   * Records what undoing the node needs, before the bridge or anything else exists: the exit
   * hook (Ctrl-C, a failed run) and the supervisor (the process killed outright) undo it.
   */
  prepare(): void {
    if (this.cleanup) return;
    this.cleanup = {
      root: this.root,
      socket: this.socket,
      netnsBefore: existsSync("/var/run/netns") ? readdirSync("/var/run/netns") : [],
      ipForward: readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim(),
      kubeProxy: this.settings.tools["kube-proxy"],
    };
    const cleanup = this.cleanup;
    this.forgetCleanup = cleanupOnExit(() => undoNode(cleanup), { node: cleanup });
  }

  async start(): Promise<void> {
    this.prepare();
    mkdirSync(this.root, { recursive: true });
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    await this.startContainerd();
    await this.importImages();
    await Promise.all([this.startKubelet(), this.startScheduler(), this.startProxy()]);
  }

  async stop(): Promise<void> {
    for (const proc of [...this.processes].reverse()) if (proc.name !== "containerd") await proc.stop();
    this.killContainers();
    await this.processes.find((p) => p.name === "containerd")?.stop();
    if (this.cleanup) undoNode(this.cleanup);
    this.forgetCleanup?.();
  }

  /** Stops the kubelet (SIGTERM, as systemd would) and starts it again on the same root: the pods keep running. */
  async restartKubelet(): Promise<void> {
    const kubelet = this.processes.find((p) => p.name === "kubelet");
    if (kubelet) {
      await kubelet.stop();
      this.processes.splice(this.processes.indexOf(kubelet), 1);
    }
    await this.startKubelet();
  }

  /** Runs ctr against this node's containerd, in the namespace the kubelet uses. */
  ctr(args: string[]): string {
    return execFileSync("ctr", ["--address", this.socket, "--namespace", "k8s.io", ...args], { encoding: "utf8" });
  }

  /** Imports an OCI archive into the node, as a registry pull would have. */
  importImage(archive: string): void {
    this.ctr(["images", "import", "--all-platforms", archive]);
  }

  private async startContainerd(): Promise<void> {
    const dir = path.join(this.root, "containerd");
    const cniConf = path.join(this.root, "cni");
    mkdirSync(dir, { recursive: true });
    mkdirSync(cniConf, { recursive: true });
    const wrapper = path.join(this.root, "runc-wrapper");
    writeFileSync(wrapper, RUNC_WRAPPER);
    chmodSync(wrapper, 0o755);
    writeFileSync(path.join(cniConf, "10-gitsync.conflist"), JSON.stringify(cniConfig()));
    const config = path.join(dir, "config.toml");
    writeFileSync(config, containerdConfig({ dir, wrapper, cniConf }));
    const proc = this.spawn("containerd", "containerd", ["--config", config]);
    await proc.waitUntil(() => Promise.resolve(existsSync(this.socket) && run("ctr", ["--address", this.socket, "version"]).ok), 30_000);
  }

  private async importImages(): Promise<void> {
    const images = path.join(this.root, "images");
    mkdirSync(images, { recursive: true });
    for (const [program, name] of [
      ["pause", PAUSE_IMAGE],
      ["testapp", TESTAPP_IMAGE],
    ] as const) {
      const archive = path.join(images, `${program}.tar`);
      await goProgramImage(program, name, archive);
      this.importImage(archive);
    }
    const coredns = path.join(images, "coredns.tar");
    await binaryImage(this.tool("coredns"), COREDNS_IMAGE, coredns);
    this.importImage(coredns);
  }

  private async startKubelet(): Promise<void> {
    const dir = path.join(this.root, "kubelet");
    mkdirSync(dir, { recursive: true });
    const resolv = path.join(dir, "resolv.conf");
    writeFileSync(resolv, "# gitsync-env: no upstream resolver; cluster names resolve through CoreDNS\n");
    const [port, healthz] = [await freePort(), await freePort()];
    const config = path.join(dir, "config.yaml");
    writeFileSync(config, stringify(kubeletConfig({ socket: this.socket, resolv, port, healthz, podLogs: path.join(dir, "pod-logs") })));
    const proc = this.spawn("kubelet", this.tool("kubelet"), [
      `--config=${config}`,
      `--kubeconfig=${this.settings.kubeconfigs.kubelet}`,
      `--root-dir=${path.join(dir, "root")}`,
      `--cert-dir=${path.join(dir, "pki")}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${BRIDGE_IP}`,
      "--v=1",
    ]);
    await proc.waitUntil(async () => (await fetch(`http://127.0.0.1:${healthz}/healthz`)).ok, 60_000);
  }

  private async startScheduler(): Promise<void> {
    const port = await freePort();
    const { scheduler, admin } = this.settings.kubeconfigs;
    const proc = this.spawn("kube-scheduler", this.tool("kube-scheduler"), [
      `--kubeconfig=${scheduler}`,
      `--authentication-kubeconfig=${admin}`,
      `--authorization-kubeconfig=${admin}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      "--leader-elect=false",
    ]);
    await proc.waitUntil(() => portOpen(port), 60_000);
  }

  private async startProxy(): Promise<void> {
    const [metrics, healthz] = [await freePort(), await freePort()];
    const config = path.join(this.root, "kube-proxy.yaml");
    writeFileSync(
      config,
      stringify({
        apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
        kind: "KubeProxyConfiguration",
        mode: "iptables",
        clusterCIDR: POD_CIDR,
        hostnameOverride: NODE_NAME,
        bindAddress: BRIDGE_IP,
        metricsBindAddress: `127.0.0.1:${metrics}`,
        healthzBindAddress: `127.0.0.1:${healthz}`,
        clientConnection: { kubeconfig: this.settings.kubeconfigs.proxy },
        // Replies from a service's pod then return through the host, bridge netfilter or not.
        iptables: { masqueradeAll: true },
        // Leave the machine's conntrack sysctls alone.
        conntrack: { maxPerCore: 0, min: 0 },
      }),
    );
    const proc = this.spawn("kube-proxy", this.tool("kube-proxy"), [`--config=${config}`]);
    await proc.waitUntil(async () => (await fetch(`http://127.0.0.1:${healthz}/healthz`)).status > 0, 60_000);
  }

  private tool(name: string): string {
    const binary = this.settings.tools[name];
    if (!binary) throw new Error(`hack/tools.sh did not build ${name}`);
    return binary;
  }

  private spawn(name: string, binary: string, args: string[]): ManagedProcess {
    const proc = new ManagedProcess(name, binary, args, this.settings.logDir);
    this.processes.push(proc);
    proc.start();
    return proc;
  }

  /** Every container of the node, killed and removed, so no shim or pod process outlives the node. */
  private killContainers(): void {
    if (!existsSync(this.socket)) return;
    const tasks = run("ctr", ["--address", this.socket, "--namespace", "k8s.io", "tasks", "ls", "-q"]).stdout.split("\n").filter(Boolean);
    for (const id of tasks) run("ctr", ["--address", this.socket, "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", id]);
    for (const id of tasks) run("ctr", ["--address", this.socket, "--namespace", "k8s.io", "tasks", "delete", "--force", id]);
  }
}

/** What undoing a node needs; plain data, so that the supervisor can undo a node whose process was killed. */
export interface NodeCleanup {
  root: string;
  socket: string;
  netnsBefore: string[];
  ipForward: string;
  kubeProxy?: string;
}

/** Everything a node leaves but its own processes: shims and containers, mounts, network namespaces, iptables, the bridge. Synchronous, idempotent. */
export function undoNode(cleanup: NodeCleanup): void {
  killShims(cleanup.socket);
  unmountAll(cleanup);
  removeNetns(cleanup);
  if (cleanup.kubeProxy) run(cleanup.kubeProxy, ["--cleanup"]);
  // kube-proxy --cleanup leaves the kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY).
  for (const table of ["nat", "filter", "mangle"]) removeChains(table, /^(KUBE|CNI)-/);
  run("ip", ["link", "del", BRIDGE]);
  writeFileSync("/proc/sys/net/ipv4/ip_forward", cleanup.ipForward);
}

/** The shims of a containerd and every process below them (the containers), children first. */
function killShims(socket: string): void {
  const shims = run("pgrep", ["-f", `containerd-shim.*${socket}`])
    .stdout.split("\n")
    .filter(Boolean)
    .map(Number);
  killTrees(shims);
}

/** Mounts under the node's folder (pod volumes, snapshots, rootfs) and its pods' network namespaces, deepest first. */
function unmountAll(cleanup: NodeCleanup): void {
  const before = new Set(cleanup.netnsBefore);
  unmountWhere((target) => target.startsWith(cleanup.root) || (target.startsWith("/run/netns/") && !before.has(path.basename(target))));
}

function removeNetns(cleanup: NodeCleanup): void {
  if (!existsSync("/var/run/netns")) return;
  const before = new Set(cleanup.netnsBefore);
  for (const ns of readdirSync("/var/run/netns")) if (!before.has(ns) && ns.startsWith("cni-")) run("ip", ["netns", "delete", ns]);
}

function containerdConfig(paths: { dir: string; wrapper: string; cniConf: string }): string {
  return `version = 2
root = "${paths.dir}/root"
state = "${paths.dir}/state"
oom_score = 0
[grpc]
  address = "${paths.dir}/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "${paths.dir}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "${paths.wrapper}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${paths.cniConf}"
`;
}

function cniConfig(): object {
  return {
    cniVersion: "1.0.0",
    name: "gitsync",
    plugins: [
      {
        type: "bridge",
        bridge: BRIDGE,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: "host-local", ranges: [[{ subnet: POD_CIDR, gateway: BRIDGE_IP, rangeStart: "10.88.1.1" }]], routes: [{ dst: "0.0.0.0/0" }] },
      },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
}

function kubeletConfig(options: { socket: string; resolv: string; port: number; healthz: number; podLogs: string }): object {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: BRIDGE_IP,
    port: options.port,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: options.healthz,
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: "AlwaysAllow" },
    containerRuntimeEndpoint: `unix://${options.socket}`,
    cgroupDriver: "cgroupfs",
    failCgroupV1: false,
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failSwapOn: false,
    oomScoreAdj: 0,
    clusterDNS: [CLUSTER_DNS],
    clusterDomain: "cluster.local",
    resolvConf: options.resolv,
    podLogsDir: options.podLogs,
    // A busy or small disk must not evict the tests' pods or collect their images.
    evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    registerWithTaints: [],
    syncFrequency: "5s",
    fileCheckFrequency: "5s",
  };
}

function run(command: string, args: string[]): { ok: boolean; stdout: string } {
  const result = spawnSync(command, args, { encoding: "utf8" });
  return { ok: result.status === 0, stdout: result.stdout ?? "" };
}

function sh(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: ["ignore", "ignore", "inherit"] });
}

/** Removes the chains whose names match, and every rule that jumps to them. */
function removeChains(table: string, pattern: RegExp): void {
  const rules = run("iptables", ["-t", table, "-S"]).stdout.split("\n");
  const chains = rules.flatMap((r) => /^-N (\S+)/.exec(r)?.[1] ?? []).filter((c) => pattern.test(c));
  for (const rule of rules) {
    const jump = / -j (\S+)/.exec(rule)?.[1];
    // Through a shell: rules carry quoted comments.
    if (rule.startsWith("-A ") && jump && chains.includes(jump)) run("sh", ["-c", `iptables -t ${table} ${rule.replace(/^-A /, "-D ")}`]);
  }
  for (const chain of chains) run("iptables", ["-t", table, "-F", chain]);
  for (const chain of chains) run("iptables", ["-t", table, "-X", chain]);
}

/** CoreDNS as clusters run it: a Deployment in kube-system behind the kube-dns Service at CLUSTER_DNS. */
export function coreDnsManifests(): object[] {
  const labels = { "k8s-app": "kube-dns" };
  const corefile = [
    ".:53 {",
    "  errors",
    "  health :8080",
    "  ready :8181",
    "  kubernetes cluster.local in-addr.arpa ip6.arpa {",
    "    pods insecure",
    "    fallthrough in-addr.arpa ip6.arpa",
    "  }",
    "  cache 5",
    "}",
    "",
  ].join("\n");
  const rbac = [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "coredns", namespace: "kube-system" } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "system:coredns" },
      rules: [
        { apiGroups: [""], resources: ["endpoints", "services", "pods", "namespaces"], verbs: ["list", "watch"] },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "system:coredns" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:coredns" },
      subjects: [{ kind: "ServiceAccount", name: "coredns", namespace: "kube-system" }],
    },
  ];
  const container = {
    name: "coredns",
    image: COREDNS_IMAGE,
    imagePullPolicy: "Never",
    args: ["-conf", "/etc/coredns/Corefile"],
    ports: [
      { name: "dns", containerPort: 53, protocol: "UDP" },
      { name: "dns-tcp", containerPort: 53, protocol: "TCP" },
    ],
    readinessProbe: { httpGet: { path: "/ready", port: 8181 }, periodSeconds: 1 },
    livenessProbe: { httpGet: { path: "/health", port: 8080 } },
    volumeMounts: [{ name: "config", mountPath: "/etc/coredns" }],
  };
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "coredns", namespace: "kube-system", labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { serviceAccountName: "coredns", dnsPolicy: "Default", containers: [container], volumes: [{ name: "config", configMap: { name: "coredns" } }] },
      },
    },
  };
  const ports = [
    { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
    { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
  ];
  return [
    ...rbac,
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "coredns", namespace: "kube-system" }, data: { Corefile: corefile } },
    deployment,
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "kube-dns", namespace: "kube-system", labels },
      spec: { selector: labels, clusterIP: CLUSTER_DNS, ports },
    },
  ];
}

/** /proc/<pid>/stat, or "" when the process is gone. */
