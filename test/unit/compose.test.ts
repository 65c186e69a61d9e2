import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { commandArgs, parsePort, quantityBytes, quantityCpus, readinessProbe } from "../../src/compose/convert.js";
import { FolderFiles } from "../../src/compose/files.js";
import { interpolateString } from "../../src/compose/interpolate.js";
import { planProject } from "../../src/compose/plan.js";
import { ComposeInvalidError, loadProject, type Decrypt } from "../../src/compose/project.js";
import { CONFIG_HASH_ANNOTATION, renderProject, type RenderedProject, type RenderOptions } from "../../src/compose/render.js";
import { validateCompose } from "../../src/compose/schema.js";
import { configMapData } from "../../src/compose/volumes.js";

const COMPOSE = `
services:
  logstash:
    image: example/logstash:\${LOGSTASH_TAG:-8.1}
    volumes:
      - ./logstash/pipeline:/usr/share/logstash/pipeline:ro
      - ./logstash/logstash.yml:/usr/share/logstash/config/logstash.yml
    environment:
      LOG_LEVEL: \${LOG_LEVEL}
    healthcheck:
      test: ["CMD", "/bin/check"]
      interval: 5s
      timeout: 2s
      retries: 4
      start_period: 10s
  web:
    image: example/web:1
    container_name: web-1
    restart: always
    ports: ["8080:80"]
    command: serve --port 80
    env_file: web.env
    depends_on:
      logstash:
        condition: service_healthy
    deploy:
      replicas: 2
      resources:
        limits: { cpus: "0.5", memory: 512m }
  worker:
    image: example/worker:1
    user: "1000:2000"
    working_dir: /work
    entrypoint: ["/worker"]
    expose: ["9000"]
    volumes: [data:/data]
volumes:
  data: {}
`;

async function project(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "compose-unit-"));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

const BASE = {
  "compose.yaml": COMPOSE,
  ".env": "LOG_LEVEL=info\nUNUSED=1\n",
  "web.env": "GREETING=hello\n",
  "logstash/pipeline/main.conf": "input {}\n",
  "logstash/pipeline/nested/filters.conf": "filter {}\n",
  "logstash/logstash.yml": "http.host: 0.0.0.0\n",
};

const options: RenderOptions = { name: "shop", namespace: "apps" };

async function render(files: Record<string, string>, more: Partial<RenderOptions> = {}, decrypt?: Decrypt): Promise<RenderedProject> {
  const dir = await project(files);
  try {
    return await renderProject(await loadProject(new FolderFiles(dir), { decrypt }), { ...options, ...more });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function invalid(files: Record<string, string>, pattern: RegExp): Promise<void> {
  await assert.rejects(render(files), (err: unknown) => {
    assert.ok(err instanceof ComposeInvalidError, String(err));
    assert.match(err.message, pattern);
    return true;
  });
}

describe("compose interpolation", () => {
  const vars = { SET: "value", EMPTY: "" };
  const cases: [string, string][] = [
    ["${SET}", "value"],
    ["$SET/x", "value/x"],
    ["${UNSET}", ""],
    ["${UNSET:-fallback}", "fallback"],
    ["${EMPTY:-fallback}", "fallback"],
    ["${EMPTY-fallback}", ""],
    ["${UNSET-fallback}", "fallback"],
    ["${SET:+alt}", "alt"],
    ["${UNSET:+alt}", ""],
    ["${UNSET:-${SET}}", "value"],
    ["$$SET", "$SET"],
    ["cost: $$5", "cost: $5"],
    ["a $ b", "a $ b"],
  ];
  for (const [input, expected] of cases) it(`${input} → "${expected}"`, () => assert.equal(interpolateString(input, vars, "f"), expected));

  it("${VAR:?message} fails with the message and the field", () => {
    assert.throws(() => interpolateString("${EMPTY:?must be set}", vars, "services.web.image"), /services\.web\.image: must be set/);
    assert.equal(interpolateString("${EMPTY?must be set}", vars, "f"), "");
    assert.throws(() => interpolateString("${UNSET?}", vars, "f"), /required variable UNSET/);
  });

  it("an unclosed reference names the field", () => assert.throws(() => interpolateString("${OPEN", vars, "services.a.image"), /services\.a\.image: unclosed/));
});

describe("compose values in Kubernetes terms", () => {
  it("converts byte sizes and CPUs to canonical quantities", () => {
    assert.deepEqual(
      ["512m", "1g", "1.5g", "100", "64k"].map((v) => quantityBytes(v, "f")),
      ["512Mi", "1Gi", "1536Mi", "100", "64Ki"],
    );
    assert.deepEqual(
      ["0.5", "2", "1.25"].map((v) => quantityCpus(v, "f")),
      ["500m", "2", "1250m"],
    );
    assert.throws(() => quantityBytes("lots", "services.a.deploy.resources.limits.memory"), /byte size/);
  });

  it("parses ports in short and long form", () => {
    assert.deepEqual(parsePort("8080:80", "f"), { target: 80, published: 8080, protocol: "TCP" });
    assert.deepEqual(parsePort("127.0.0.1:53:53/udp", "f"), { target: 53, published: 53, protocol: "UDP" });
    assert.deepEqual(parsePort(9000, "f"), { target: 9000, protocol: "TCP" });
    assert.deepEqual(parsePort({ target: 80, published: "8081" }, "f"), { target: 80, published: 8081, protocol: "TCP" });
    assert.throws(() => parsePort("3000-3005:3000-3005", "services.a.ports[0]"), /ranges are not supported/);
  });

  it("splits string commands as a shell would and refuses shell syntax", () => {
    assert.deepEqual(commandArgs(`serve --name "two words"`, "f"), ["serve", "--name", "two words"]);
    assert.deepEqual(commandArgs(["a", "b c"], "f"), ["a", "b c"]);
    assert.throws(() => commandArgs("a | b", "services.x.command"), /give the command as a list/);
  });

  it("maps healthcheck forms to a readiness probe", () => {
    assert.deepEqual((readinessProbe({ healthcheck: { test: "curl -f localhost" } }, "f") as { exec: unknown }).exec, {
      command: ["/bin/sh", "-c", "curl -f localhost"],
    });
    assert.deepEqual((readinessProbe({ healthcheck: { test: ["CMD-SHELL", "true"] } }, "f") as { exec: unknown }).exec, { command: ["/bin/sh", "-c", "true"] });
    assert.equal(readinessProbe({ healthcheck: { test: ["NONE"] } }, "f"), undefined);
    assert.equal(readinessProbe({ healthcheck: { test: ["CMD", "x"], disable: true } }, "f"), undefined);
  });

  it("uses the current compose schema (include, develop, models)", () => {
    assert.deepEqual(validateCompose({ include: ["other/compose.yaml"], services: { a: { image: "x", develop: { watch: [] } } } }), []);
    assert.match(validateCompose({ services: { a: { image: "x", colour: "blue" } } }).join(), /services\.a\.colour: not a key/);
    assert.deepEqual(validateCompose({ services: { a: { image: "x", healthcheck: { retries: {} } } } }), [
      "services.a.healthcheck.retries: must be number,string",
    ]);
  });
});

describe("compose project rendering", () => {
  it("renders Deployments, a Service, ConfigMaps and a PVC with the labels every object needs", async () => {
    const rendered = await render(BASE);
    assert.deepEqual(
      rendered.services.map((s) => s.name),
      ["logstash", "web", "worker"],
    );
    const [logstash, web, worker] = rendered.services;
    for (const s of rendered.services) {
      assert.deepEqual(
        { ...s.deployment.metadata.labels },
        { "app.kubernetes.io/managed-by": "gitsync-operator", "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/name": s.name },
      );
      assert.equal(s.deployment.metadata.namespace, "apps");
    }
    const container = (s: typeof web) => (s!.deployment.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec.containers[0]!;
    assert.equal(container(logstash).image, "example/logstash:8.1");
    assert.deepEqual(container(logstash).env, [{ name: "LOG_LEVEL", value: "info" }]);
    assert.deepEqual(container(logstash).readinessProbe, {
      exec: { command: ["/bin/check"] },
      periodSeconds: 5,
      timeoutSeconds: 2,
      failureThreshold: 4,
      initialDelaySeconds: 10,
    });
    assert.deepEqual(container(web).args, ["serve", "--port", "80"]);
    assert.deepEqual(container(web).env, [{ name: "GREETING", value: "hello" }]);
    assert.deepEqual(container(web).resources, { limits: { cpu: "500m", memory: "512Mi" } });
    assert.equal((web!.deployment.spec as { replicas: number }).replicas, 2);
    assert.deepEqual((web!.service!.spec as { ports: unknown }).ports, [{ name: "tcp-8080", port: 8080, targetPort: 80, protocol: "TCP" }]);
    assert.deepEqual(web!.dependsOn, [{ name: "logstash", healthy: true }]);
    assert.deepEqual(container(worker).command, ["/worker"]);
    assert.deepEqual(container(worker).securityContext, { runAsUser: 1000, runAsGroup: 2000 });
    assert.equal(worker!.service!.metadata.name, "worker");
    assert.equal(rendered.claims[0]!.metadata.name, "shop-data");
    assert.deepEqual(rendered.notes, ["web: ignored container_name, restart"]);

    const [pipeline, single] = logstash!.configMaps;
    assert.deepEqual(
      pipeline!.items.map((i) => [i.key, i.path]),
      [
        ["main.conf", "main.conf"],
        ["nested__filters.conf", "nested/filters.conf"],
      ],
    );
    assert.equal(single!.single, true);
    const mounts = container(logstash).volumeMounts as Record<string, unknown>[];
    assert.equal(mounts[1]!.subPath, "logstash.yml");
    const hash = (logstash!.deployment.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
    assert.equal(hash[CONFIG_HASH_ANNOTATION], logstash!.hash);
  });

  it("reads ConfigMap data only when asked, and refuses a mount over 1 MiB naming the path", async () => {
    const dir = await project({ ...BASE, "logstash/pipeline/big.bin": "x".repeat(1024 * 1024) });
    try {
      const rendered = await renderProject(await loadProject(new FolderFiles(dir)), options);
      const plan = rendered.services[0]!.configMaps[0]!;
      await assert.rejects(configMapData(new FolderFiles(dir), plan), /logstash\/pipeline.*1 MiB/);
      const small = await configMapData(new FolderFiles(dir), rendered.services[0]!.configMaps[1]!);
      assert.deepEqual(small.data, { "logstash.yml": "http.host: 0.0.0.0\n" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("puts an encrypted env file in a Secret and never in the pod spec", async () => {
    const decrypt: Decrypt = (data) => Promise.resolve(new TextEncoder().encode(new TextDecoder().decode(data).replace("SEALED:", "")));
    const files = { ...BASE, "web.env": "GREETING=hello\n", "secret.env.age": "SEALED:API_TOKEN=s3cr3t-value\n" };
    files["compose.yaml"] = COMPOSE.replace("env_file: web.env", "env_file: [web.env, secret.env]");
    const rendered = await render(files, {}, decrypt);
    const web = rendered.services.find((s) => s.name === "web")!;
    assert.ok(!JSON.stringify(web.deployment).includes("s3cr3t"));
    assert.equal(Buffer.from((web.secret!.data as Record<string, string>).API_TOKEN!, "base64").toString(), "s3cr3t-value");
    await assert.rejects(render(files), /secret\.env\.age: the file is encrypted; set spec\.decryption/);
  });

  const refusals: [string, string, RegExp][] = [
    ["build without image", "services:\n  api:\n    build: .\n", /compose\.yaml: services\.api\.build: build without image/],
    ["privileged", "services:\n  api:\n    image: x\n    privileged: true\n", /services\.api\.privileged: cannot be honoured safely/],
    ["host network", "services:\n  api:\n    image: x\n    network_mode: host\n", /services\.api\.network_mode/],
    ["host pid", "services:\n  api:\n    image: x\n    pid: host\n", /services\.api\.pid/],
    ["devices", "services:\n  api:\n    image: x\n    devices: [/dev/fuse]\n", /services\.api\.devices/],
    [
      "bind outside",
      "services:\n  api:\n    image: x\n    volumes: [../secrets:/s]\n",
      /services\.api\.volumes\[0\]: bind mount of "\.\.\/secrets" is outside the project/,
    ],
    ["host path", "services:\n  api:\n    image: x\n    volumes: [/var/run/docker.sock:/s]\n", /outside the project/],
    ["required variable", "services:\n  api:\n    image: ${TAG:?set TAG in .env}\n", /compose\.yaml: services\.api\.image: set TAG in \.env/],
    ["unknown key", "services:\n  api:\n    image: x\n    imagee: y\n", /services\.api\.imagee: not a key/],
    ["missing dependency", "services:\n  api:\n    image: x\n    depends_on: [db]\n", /services\.api\.depends_on: "db" is not a service/],
    ["cycle", "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n", /dependency cycle: a → b → a/],
    ["bad name", "services:\n  Api_1:\n    image: x\n", /services\.Api_1: the service name must be a DNS label/],
    ["named user", "services:\n  api:\n    image: x\n    user: postgres\n", /services\.api\.user: "postgres" must be a numeric uid/],
    ["yaml error", "services:\n  api: [\n", /compose\.yaml: line \d+:/],
  ];
  for (const [what, compose, pattern] of refusals) it(`refuses ${what}, naming file, service and key`, () => invalid({ "compose.yaml": compose }, pattern));

  it("finds compose files in the specification's lookup order", async () => {
    const rendered = await render({ "docker-compose.yml": "services:\n  old:\n    image: x\n", "compose.yml": "services:\n  new:\n    image: x\n" });
    assert.equal(rendered.services[0]!.name, "new");
    await invalid({ "other.yaml": "services: {}\n" }, /no compose file: looked for compose\.yaml, compose\.yml, docker-compose\.yaml, docker-compose\.yml/);
  });
});

describe("compose plans", () => {
  it("rolls only the service whose nested file changed, naming the file", async () => {
    const before = await render(BASE);
    const after = await render({ ...BASE, "logstash/pipeline/nested/filters.conf": "filter { mutate {} }\n" });
    assert.deepEqual(planProject(before, after), [
      { name: "logstash", action: "roll", reasons: ["logstash/pipeline/nested/filters.conf changed"] },
      { name: "web", action: "unchanged", reasons: [] },
      { name: "worker", action: "unchanged", reasons: [] },
    ]);
  });

  it("rolls only the service using a changed .env variable, unless AllOnProjectChange", async () => {
    const changed = { ...BASE, ".env": "LOG_LEVEL=debug\nUNUSED=1\n" };
    const plan = planProject(await render(BASE), await render(changed));
    assert.deepEqual(
      plan.map((p) => [p.name, p.action, p.reasons]),
      [
        ["logstash", "roll", ["services.logstash.environment.LOG_LEVEL changed"]],
        ["web", "unchanged", []],
        ["worker", "unchanged", []],
      ],
    );
    const unusedOnly = planProject(await render(BASE), await render({ ...BASE, ".env": "LOG_LEVEL=info\nUNUSED=2\n" }));
    assert.ok(unusedOnly.every((p) => p.action === "unchanged"));
    const all = planProject(await render(BASE, { rollout: "AllOnProjectChange" }), await render(changed, { rollout: "AllOnProjectChange" }));
    assert.deepEqual(
      all.map((p) => [p.name, p.action]),
      [
        ["logstash", "roll"],
        ["web", "roll"],
        ["worker", "roll"],
      ],
    );
    assert.deepEqual(all[1]!.reasons, ["the env file changed"]);
  });

  it("counts a service's own folder, and reports created and deleted services", async () => {
    const withFolder = { ...BASE, "worker/settings.ini": "a=1\n" };
    const plan = planProject(await render(withFolder), await render({ ...withFolder, "worker/settings.ini": "a=2\n" }));
    assert.deepEqual(plan.find((p) => p.name === "worker")?.reasons, ["worker/settings.ini changed"]);
    const removed = planProject(await render(BASE), await render(BASE, { services: ["web", "logstash"] }));
    assert.deepEqual(removed.at(-1), { name: "worker", action: "delete", reasons: ["no longer in the project"] });
    const created = planProject(undefined, await render(BASE));
    assert.ok(created.every((p) => p.action === "create"));
  });
});

describe("compose profiles", () => {
  const PROFILED = `services:
  web:
    image: example/web
  debug:
    image: example/debug
    profiles: [debug]
  seed:
    image: example/seed
    profiles: [tools, init]
    depends_on: [web]
`;
  const selected = async (files: Record<string, string>, profiles?: string[]): Promise<string[]> => {
    const dir = await project(files);
    try {
      return Object.keys((await loadProject(new FolderFiles(dir), { profiles })).services).sort();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  it("selects services as docker compose does: none with profiles unless active, * for all", async () => {
    assert.deepEqual(await selected({ "compose.yaml": PROFILED }), ["web"]);
    assert.deepEqual(await selected({ "compose.yaml": PROFILED }, ["init"]), ["seed", "web"]);
    assert.deepEqual(await selected({ "compose.yaml": PROFILED }, ["debug", "tools"]), ["debug", "seed", "web"]);
    assert.deepEqual(await selected({ "compose.yaml": PROFILED }, ["*"]), ["debug", "seed", "web"]);
  });

  it("takes COMPOSE_PROFILES from the env file, and the given profiles over it", async () => {
    const files = { "compose.yaml": PROFILED, ".env": "COMPOSE_PROFILES=debug, init\n" };
    assert.deepEqual(await selected(files), ["debug", "seed", "web"]);
    assert.deepEqual(await selected(files, []), ["web"]);
  });

  it("refuses a selected service that depends on one left out, naming both", async () => {
    const files = { "compose.yaml": PROFILED.replace("    depends_on: [web]\n", "    depends_on:\n      debug: {condition: service_started}\n") };
    await assert.rejects(selected(files, ["tools"]), (err: unknown) => {
      assert.ok(err instanceof ComposeInvalidError, String(err));
      assert.match(
        err.message,
        /compose\.yaml: services\.seed\.depends_on: seed depends on debug, which is not selected: its profiles are debug, and the active ones tools/,
      );
      return true;
    });
  });

  it("renders no note for profiles", async () => {
    const rendered = await render({ "compose.yaml": PROFILED.replace("profiles: [debug]", "profiles: [debug]\n    restart: always") });
    assert.deepEqual(rendered.notes, []);
  });
});
