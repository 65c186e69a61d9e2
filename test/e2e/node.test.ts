// The environment's real node: pods scheduled and run by kubelet with containerd from images
// built here, readiness probes, Services by ClusterIP (kube-proxy) and by name (CoreDNS),
// and the API server reachable from pods through the kubernetes Service.

import assert from "node:assert/strict";
import { stringify } from "yaml";
import { TESTAPP_IMAGE } from "../../hack/env/node.js";
import { eventually } from "./helpers.js";
import { env, kubectlOk } from "./setup.js";

const ns = "node-e2e";

function testapp(name: string, options: { replicas?: number; env?: Record<string, string> } = {}): string {
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: ns },
    spec: {
      replicas: options.replicas ?? 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: "app",
              image: TESTAPP_IMAGE,
              imagePullPolicy: "Never",
              env: Object.entries(options.env ?? {}).map(([k, v]) => ({ name: k, value: v })),
              readinessProbe: { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
  const service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: ns },
    spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
  };
  return `${stringify(deployment)}---\n${stringify(service)}`;
}

/** A GET from the host to a pod's IP on the bridge. */
async function fromPod(podIp: string, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${podIp}:8080${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

describe("the environment's node (kubelet, containerd, kube-proxy, CoreDNS)", function () {
  let clientIp: string;

  before(async () => {
    await kubectlOk(["create", "namespace", ns]);
    await kubectlOk(["apply", "-f", "-"], `${testapp("web", { replicas: 2, env: { GREETING: "hello from web" } })}---\n${testapp("client")}`);
    await kubectlOk(["rollout", "status", "-n", ns, "deployment/web", "deployment/client", "--timeout=120s"]);
    clientIp = (await kubectlOk(["get", "pods", "-n", ns, "-l", "app=client", "-o", "jsonpath={.items[0].status.podIP}"])).trim();
  });

  it("runs pods with a readiness probe to Ready, on the node, with pod IPs on the bridge", async () => {
    const pods = JSON.parse(await kubectlOk(["get", "pods", "-n", ns, "-l", "app=web", "-o", "json"])) as {
      items: { spec: { nodeName: string }; status: { podIP: string; conditions: { type: string; status: string }[] } }[];
    };
    assert.equal(pods.items.length, 2);
    for (const pod of pods.items) {
      assert.equal(pod.spec.nodeName, "gitsync-node");
      assert.match(pod.status.podIP, /^10\.88\./);
      assert.equal(pod.status.conditions.find((c) => c.type === "Ready")?.status, "True");
      assert.equal((await fromPod(pod.status.podIP, "/env?name=GREETING")).body, "hello from web");
    }
  });

  it("answers a Service by its ClusterIP and by its DNS name from another pod", async () => {
    const clusterIp = (await kubectlOk(["get", "service", "-n", ns, "web", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    assert.match(clusterIp, /^10\.96\.0\./);
    const byIp = await eventually(async () => {
      const answer = await fromPod(clientIp, `/fetch?url=${encodeURIComponent(`http://${clusterIp}/env?name=GREETING`)}`);
      assert.equal(answer.status, 200, answer.body);
      return answer;
    }, 30_000);
    assert.equal(byIp.body, "hello from web");
    const byName = await eventually(async () => {
      const answer = await fromPod(clientIp, `/fetch?url=${encodeURIComponent(`http://web.${ns}.svc.cluster.local/env?name=GREETING`)}`);
      assert.equal(answer.status, 200, answer.body);
      return answer;
    }, 30_000);
    assert.equal(byName.body, "hello from web");
    // The short name, through the pod's search path, as compose services find each other.
    const short = await fromPod(clientIp, `/fetch?url=${encodeURIComponent("http://web/hostname")}`);
    assert.equal(short.status, 200, short.body);
    assert.match(short.body, /^web-/);
  });

  it("lets pods reach the API server through the kubernetes Service and cluster DNS", async () => {
    // Anonymous requests are refused, but only after TLS with the serving certificate the pod trusts.
    const answer = await fromPod(clientIp, `/fetch?url=${encodeURIComponent("https://kubernetes.default.svc/readyz")}`);
    assert.equal(answer.status, 502, "the test app does not trust the CA: a TLS error, not a refused connection");
    assert.match(answer.body, /certificate|x509/i);
    const endpoints = await kubectlOk([
      "get",
      "endpointslices",
      "-n",
      "default",
      "-l",
      "kubernetes.io/service-name=kubernetes",
      "-o",
      "jsonpath={.items[0].endpoints[0].addresses[0]}",
    ]);
    assert.equal(endpoints.trim(), new URL(env().apiServerUrl).hostname);
  });

  it("runs CoreDNS as a pod behind the kube-dns Service, the kubelet's cluster DNS", async () => {
    const pods = await kubectlOk(["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "jsonpath={.items[*].status.phase}"]);
    assert.equal(pods.trim(), "Running");
    const resolv = await fromPod(clientIp, "/file?path=/etc/resolv.conf");
    assert.match(resolv.body, /^nameserver 10\.96\.0\.10$/m);
    assert.match(resolv.body, new RegExp(`^search ${ns}\\.svc\\.cluster\\.local svc\\.cluster\\.local cluster\\.local`, "m"));
  });
});
