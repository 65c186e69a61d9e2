// The Helm chart, rendered by real helm and checked by the real API server.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { readdirSync, readFileSync } from "node:fs";
import { parse, parseAllDocuments } from "yaml";
import { adminClient, env, kubectlOk, ROOT } from "./setup.js";

const run = promisify(execFile);
const CHART = path.join(ROOT, "deploy/helm/gitsync-operator");

async function helm(...args: string[]): Promise<string> {
  const helmBin = env().tools.helm;
  assert.ok(helmBin, "hack/tools.sh builds helm");
  return (await run(helmBin, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

/** The chart rendered as a release in gitsync-system, with more of helm's flags. */
const template = (...args: string[]): Promise<string> => helm("template", "gitsync", CHART, "--namespace", "gitsync-system", ...args);

describe("Helm chart (real helm, real API server)", function () {
  it("lints clean", async () => {
    const out = await helm("lint", CHART);
    assert.match(out, /0 chart\(s\) failed/);
  });

  it("refuses a value of the wrong type, an unknown key or a duration that is none, naming the key, on template and install", async () => {
    const refusal = async (args: string[]): Promise<string> => {
      const failed = await helm(...args).then(
        () => undefined,
        (err: Error & { stderr?: string }) => err.stderr ?? err.message,
      );
      assert.ok(failed, `helm ${args.join(" ")} should fail`);
      return failed;
    };
    assert.match(await refusal(["template", "gitsync", CHART, "--set", "replicas=banana"]), /at '\/replicas': got string, want integer/);
    assert.match(await refusal(["template", "gitsync", CHART, "--set", "replica=3"]), /additional properties 'replica' not allowed/);
    assert.match(
      await refusal(["template", "gitsync", CHART, "--set", "leaderElection.leaseDuration=soon"]),
      /at '\/leaderElection\/leaseDuration': 'soon' does not match pattern/,
    );
    const install = [
      "install",
      "bad-values",
      CHART,
      "--kubeconfig",
      env().admin.kubeconfig,
      "--namespace",
      "gitsync-system",
      "--dry-run=server",
      "--set",
      "logLevel=loud",
    ];
    assert.match(await refusal(install), /at '\/logLevel': value must be one of/);
  });

  it("renders objects the API server accepts", async () => {
    const rendered = await template();
    const kinds = parseAllDocuments(rendered)
      .map((d) => d.toJS() as { kind?: string } | null)
      .filter((d): d is { kind: string } => Boolean(d?.kind))
      .map((d) => d.kind)
      .sort();
    for (const kind of [
      "CustomResourceDefinition",
      "ClusterRole",
      "ClusterRoleBinding",
      "Role",
      "RoleBinding",
      "Deployment",
      "Service",
      "ServiceAccount",
      "PodDisruptionBudget",
    ])
      assert.ok(kinds.includes(kind), `renders a ${kind}`);
    await kubectlOk(["apply", "--dry-run=server", "-n", "gitsync-system", "-f", "-"], rendered);
  });

  it("renders the CRDs of deploy/crds as templates, kept on uninstall unless crds.keep is false, none with crds.install false", async () => {
    const crdsOf = async (...set: string[]): Promise<{ metadata: { name: string; annotations?: Record<string, string> }; spec: unknown }[]> =>
      parseAllDocuments(await template(...set))
        .map((d) => d.toJS() as { kind?: string; metadata: { name: string; annotations?: Record<string, string> }; spec: unknown } | null)
        .filter(
          (d): d is { kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec: unknown } => d?.kind === "CustomResourceDefinition",
        );
    const crds = await crdsOf();
    const files = readdirSync(path.join(ROOT, "deploy/crds")).sort();
    assert.deepEqual(crds.map((c) => `${c.metadata.name}.yaml`).sort(), files);
    for (const crd of crds) {
      const plain = parse(readFileSync(path.join(ROOT, "deploy/crds", `${crd.metadata.name}.yaml`), "utf8")) as { spec: unknown };
      assert.deepEqual(crd.spec, plain.spec, `${crd.metadata.name} as deploy/crds has it`);
      assert.equal(crd.metadata.annotations?.["helm.sh/resource-policy"], "keep");
    }
    assert.ok((await crdsOf("--set", "crds.keep=false")).every((c) => c.metadata.annotations?.["helm.sh/resource-policy"] === undefined));
    assert.deepEqual(await crdsOf("--set", "crds.install=false"), []);
  });

  it("admits only the named peers to the operator's port with networkPolicy, and nobody when none are named", async () => {
    const policyOf = async (...set: string[]): Promise<{ spec: { ingress: { from?: unknown[]; ports: unknown[] }[] } }> => {
      const rendered = await template("--show-only", "templates/availability.yaml", "--set", "networkPolicy.enabled=true", ...set);
      await kubectlOk(["apply", "--dry-run=server", "-n", "gitsync-system", "-f", "-"], rendered);
      const policy = parseAllDocuments(rendered)
        .map((d) => d.toJS() as { kind?: string; spec: { ingress: { from?: unknown[]; ports: unknown[] }[] } })
        .find((d) => d.kind === "NetworkPolicy");
      assert.ok(policy, "renders a NetworkPolicy");
      return policy;
    };
    assert.deepEqual((await policyOf()).spec.ingress, [], "no peers: no ingress rule (an empty from would admit all)");
    const monitoring = await policyOf("--set", "networkPolicy.from[0].namespaceSelector.matchLabels.team=monitoring");
    assert.deepEqual(monitoring.spec.ingress, [
      { ports: [{ port: "http", protocol: "TCP" }], from: [{ namespaceSelector: { matchLabels: { team: "monitoring" } } }] },
    ]);
    const single = await template("--set", "replicas=1");
    assert.doesNotMatch(single, /kind: PodDisruptionBudget/, "no budget for a single replica, which it would block from every drain");
  });

  it("with aws.objectIdentity=false refuses serviceAccountName and grants no ServiceAccount tokens; aws.roleArn mounts a projected token", async () => {
    const off = await template("--set", "aws.objectIdentity=false");
    assert.doesNotMatch(off, /serviceaccounts\/token/);
    assert.match(off, /- --no-object-identity/);
    const irsa = await template("--set", "aws.roleArn=arn:aws:iam::123456789012:role/backups");
    const deployment = parseAllDocuments(irsa)
      .map(
        (d) =>
          d.toJS() as {
            kind?: string;
            spec?: { template: { spec: { volumes: { name: string; projected?: unknown }[]; containers: { env: { name: string; value?: string }[] }[] } } };
          },
      )
      .find((d) => d.kind === "Deployment");
    const pod = deployment?.spec?.template.spec;
    assert.deepEqual(pod?.volumes.find((v) => v.name === "aws-token")?.projected, {
      sources: [{ serviceAccountToken: { path: "token", audience: "sts.amazonaws.com", expirationSeconds: 86400 } }],
    });
    const envs = new Map(pod?.containers[0]?.env.map((e) => [e.name, e.value]));
    assert.equal(envs.get("AWS_ROLE_ARN"), "arn:aws:iam::123456789012:role/backups");
    assert.equal(envs.get("AWS_WEB_IDENTITY_TOKEN_FILE"), "/var/run/secrets/eks.amazonaws.com/serviceaccount/token");
  });

  it("grants the ServiceAccount what the operator does, and no more than it needs", async () => {
    const rendered = await template("--show-only", "templates/rbac.yaml", "--show-only", "templates/serviceaccount.yaml");
    await kubectlOk(["apply", "-n", "gitsync-system", "-f", "-"], rendered);
    const kube = adminClient();
    // Ask the authorizer itself: the kinds' CRDs need not exist for RBAC to be right.
    const can = async (verb: string, group: string, resource: string, subresource = "", namespace = "team-a"): Promise<boolean> => {
      const review = await kube.request<{ status: { allowed: boolean } }>("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: "system:serviceaccount:gitsync-system:gitsync-operator",
            groups: ["system:serviceaccounts", "system:serviceaccounts:gitsync-system", "system:authenticated"],
            resourceAttributes: { namespace, verb, group, resource, subresource },
          },
        },
      });
      return review.status.allowed;
    };
    try {
      for (const [verb, group, resource, sub] of [
        ["watch", "gitsync.dev", "servicehandshakes", ""],
        ["patch", "gitsync.dev", "clusterbackupsyncs", "status"],
        ["update", "gitsync.dev", "partitionsyncs", "finalizers"],
        ["get", "", "secrets", ""],
        ["create", "events.k8s.io", "events", ""],
      ] as const) {
        assert.ok(await can(verb, group, resource, sub), `may ${verb} ${resource}${sub ? `/${sub}` : ""}`);
      }
      // Leases (leader election, the shard ring) in the release's namespace only.
      for (const verb of ["get", "list", "watch", "create", "update", "delete"]) {
        assert.ok(await can(verb, "coordination.k8s.io", "leases", "", "gitsync-system"), `may ${verb} leases in its namespace`);
      }
      assert.ok(!(await can("update", "coordination.k8s.io", "leases")), "may not touch leases in other namespaces");
      // Per-object S3 identity (aws.objectIdentity, on by default): a ServiceAccount's role and a token for it.
      assert.ok(await can("get", "", "serviceaccounts"), "may read a ServiceAccount's role annotation");
      assert.ok(await can("create", "", "serviceaccounts", "token"), "may request a ServiceAccount's token");
      assert.ok(!(await can("list", "", "serviceaccounts")), "may not list ServiceAccounts");
      assert.ok(!(await can("list", "", "secrets")), "may not list secrets");
      assert.ok(!(await can("delete", "gitsync.dev", "servicehandshakes")), "may not delete user resources");
    } finally {
      kube.close();
      // Leave nothing behind: a later `helm install` must own these objects.
      await kubectlOk(["delete", "-n", "gitsync-system", "--ignore-not-found", "-f", "-"], rendered);
    }
  });
});
