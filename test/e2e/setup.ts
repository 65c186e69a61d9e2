// Root hooks of the e2e suite: one real environment for the whole run, the CRDs applied
// with server-side apply, and the operator's identity bound to the chart's RBAC rules.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import type { Context } from "mocha";
import { parse, stringify } from "yaml";
import { Environment } from "../../hack/env/environment.js";
import { crdManifest } from "../../src/crds/generate.js";
import { KubeClient } from "../../src/runtime/kube.js";
import { leftovers } from "../leak/leftovers.js";
import { probeKind } from "./fixtures/probe.js";

export const OPERATOR_USER = "gitsync-operator";
export const ROOT = path.resolve(import.meta.dirname, "../../..");

let current: Environment | undefined;
let netnsBefore = new Set<string>();

/** The running environment; only valid inside tests. */
export function env(): Environment {
  if (!current) throw new Error("the e2e environment is not running");
  return current;
}

/** A client as the cluster admin (the tests' own view of the world). */
export function adminClient(): KubeClient {
  return KubeClient.fromKubeconfig(env().admin.kubeconfig);
}

/** An S3 client of the environment's server, as its root account (to seed and inspect buckets). */
export function adminS3(): S3Client {
  return new S3Client({
    endpoint: env().s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: env().s3.accessKey, secretAccessKey: env().s3.secretKey },
  });
}

export function kubectlOk(args: string[], input?: string): Promise<string> {
  return env().kubectlOk(args, input);
}

/** A generic Secret from literal values, as a user would create one. */
export function createSecret(namespace: string, name: string, data: Record<string, string>): Promise<string> {
  return kubectlOk(["create", "secret", "generic", name, "-n", namespace, ...Object.entries(data).map(([key, value]) => `--from-literal=${key}=${value}`)]);
}

async function grantOperator(): Promise<void> {
  const chartRules = (file: string): unknown[] => parse(readFileSync(path.join(ROOT, "deploy/helm/gitsync-operator/files", file), "utf8")) as unknown[];
  // The chart grants the Lease rules in its own namespace only; the suite's operators use gitsync-system.
  const rules = [...chartRules("rbac-rules.yaml"), ...chartRules("identity-rules.yaml"), ...chartRules("lease-rules.yaml")];
  // The Probe kind and its ConfigMaps exist only in this suite.
  rules.push(
    { apiGroups: ["e2e.gitsync.dev"], resources: ["*"], verbs: ["get", "list", "watch", "patch", "update"] },
    { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch", "patch", "create"] },
  );
  const role = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "gitsync-operator-e2e" }, rules };
  const binding = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: "gitsync-operator-e2e" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "gitsync-operator-e2e" },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: OPERATOR_USER }],
  };
  await kubectlOk(["apply", "--server-side", "-f", "-"], `${stringify(role)}\n---\n${stringify(binding)}`);
  await kubectlOk(["create", "namespace", "gitsync-system"]);
}

export const mochaHooks = {
  async beforeAll(this: Context): Promise<void> {
    this.timeout(15 * 60_000);
    netnsBefore = new Set(existsSync("/var/run/netns") ? readdirSync("/var/run/netns") : []);
    current = new Environment({ users: [OPERATOR_USER], datasets: true, node: true, podman: true });
    await current.start();
    await current.installCrds([crdManifest(probeKind)]);
    await grantOperator();
  },
  afterEach(this: Context): void {
    if (this.currentTest?.state === "failed" && current) process.stderr.write(`\nEnvironment logs:\n${current.logs()}\n`);
  },
  async afterAll(): Promise<void> {
    const dir = current?.dir;
    await current?.stop();
    current = undefined;
    // Nothing the run started may outlive it.
    const left = dir ? leftovers(dir, netnsBefore) : [];
    if (left.length) throw new Error(`the environment left behind: ${left.join("; ")}`);
  },
};
