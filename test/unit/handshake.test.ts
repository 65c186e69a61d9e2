import assert from "node:assert/strict";
import { checkHandshake, normalizePath, normalizeRepoUrl, resolveDependency, versionAgrees, type Mode } from "../../src/handshake/check.js";
import { formatResult } from "../../src/handshake/format.js";
import { parseService, type Dependency, type Endpoint, type ServiceManifest } from "../../src/handshake/manifests.js";

function aService(overrides: Partial<ServiceManifest> & { name: string }): ServiceManifest {
  return {
    repos: [`https://git.example.com/${overrides.name}-config.git`],
    source: `${overrides.name}-config`,
    dependencies: [],
    contract: { version: "1.0.0", endpoints: [] },
    ...overrides,
  };
}

const aDependency = (key: string, more: Partial<Dependency> = {}): Dependency => ({ key, sync: "relaxed", ...more });
const get = (path: string): Endpoint => ({ method: "GET", path });

/** pricing → stock and restock: the three-service system of the e2e suite, all agreeing. */
function system(changes: { stock?: Partial<ServiceManifest>; pricing?: Partial<ServiceManifest> } = {}): ServiceManifest[] {
  const stock = aService({
    name: "stock",
    contract: { version: "2.1.0", endpoints: [get("/stock/{productId}"), { method: "POST", path: "/stock/reserve" }] },
    ...changes.stock,
  });
  const restock = aService({ name: "restock", contract: { version: "1.4.0", endpoints: [{ method: "POST", path: "/orders" }] } });
  const pricing = aService({
    name: "pricing",
    dependencies: [
      aDependency("stockService", { version: "2.1.0", sync: "strict" }),
      aDependency("restock", { repo: "https://git.example.com/restock-config", version: "1.4.0" }),
    ],
    interface: {
      dependencies: [
        { name: "stock-service", outbound: [get("/stock/{id}")] },
        { name: "restock", outbound: [{ method: "post", path: "/orders/" }] },
      ],
    },
    ...changes.pricing,
  });
  return [pricing, stock, restock];
}

const reasons = (services: ServiceManifest[], mode: Mode = "strict"): string[] =>
  checkHandshake(services, mode).services.flatMap((s) => s.failures.map((f) => `${s.name}->${f.dependency}:${f.reason}`));

describe("handshake check", () => {
  const table: { name: string; services: ServiceManifest[]; mode?: Mode; expect: string[] }[] = [
    { name: "passes when every version and endpoint agrees", services: system(), expect: [] },
    {
      name: "fails when the dependency's contract moved on in strict mode",
      services: system({ stock: { contract: { version: "2.2.0", endpoints: [get("/stock/{x}")] } } }),
      expect: ["pricing->stock:VersionMismatch"],
    },
    {
      name: "fails a strict edge even when the resource is relaxed",
      services: system({ stock: { contract: { version: "2.2.0", endpoints: [get("/stock/{x}")] } } }),
      mode: "relaxed",
      expect: ["pricing->stock:VersionMismatch"],
    },
    {
      name: "accepts a minor bump on a relaxed edge in relaxed mode",
      services: system({
        pricing: { dependencies: [aDependency("stock", { version: "2.1.0" })], interface: undefined },
        stock: { contract: { version: "2.3.1", endpoints: [] } },
      }),
      mode: "relaxed",
      expect: [],
    },
    {
      name: "rejects a major bump on a relaxed edge",
      services: system({
        pricing: { dependencies: [aDependency("stock", { version: "2.1.0" })], interface: undefined },
        stock: { contract: { version: "3.0.0", endpoints: [] } },
      }),
      mode: "relaxed",
      expect: ["pricing->stock:VersionMismatch"],
    },
    {
      name: "fails when a called endpoint was renamed",
      services: system({ stock: { contract: { version: "2.1.0", endpoints: [get("/inventory/{productId}")] } } }),
      expect: ["pricing->stock:EndpointMissing"],
    },
    {
      name: "fails when a dependency is not among the services",
      services: system().filter((s) => s.name !== "restock"),
      expect: ["pricing->restock:DependencyNotFound"],
    },
    {
      name: "fails in strict mode when interface.yaml leaves a dependency out",
      services: system({ pricing: { interface: { dependencies: [{ name: "stock", outbound: [] }] } } }),
      expect: ["pricing->restock:InterfaceMissing"],
    },
    {
      name: "does not ask interface.yaml to list every dependency in relaxed mode",
      services: system({
        pricing: {
          dependencies: [aDependency("stock", { version: "2.1.0" }), aDependency("restock")],
          interface: { dependencies: [{ name: "stock", outbound: [] }] },
        },
      }),
      mode: "relaxed",
      expect: [],
    },
    {
      name: "expects the dependent's own contract version when desiredState names none (lockstep)",
      services: [
        aService({ name: "a", contract: { version: "5.0.0", endpoints: [] }, dependencies: [aDependency("b", { sync: "strict" })] }),
        aService({ name: "b", contract: { version: "5.0.1", endpoints: [] } }),
      ],
      expect: ["a->b:VersionMismatch"],
    },
    {
      name: "reads the dependency's version from service.yaml when it has no contract",
      services: [
        aService({ name: "a", dependencies: [aDependency("b", { version: "v1.2.0", sync: "strict" })] }),
        aService({ name: "b", version: "1.2.0", contract: undefined }),
      ],
      expect: [],
    },
  ];
  for (const c of table) it(c.name, () => assert.deepEqual(reasons(c.services, c.mode), c.expect));

  it("says what is wrong in a sentence a developer can act on", () => {
    const result = checkHandshake(system({ stock: { contract: { version: "2.2.0", endpoints: [] } } }), "strict");
    assert.deepEqual(
      result.services.find((s) => s.name === "pricing")?.failures.map((f) => f.message),
      [
        "pricing expects stock 2.1.0 (strict), but stock's contract is 2.2.0",
        "pricing calls GET /stock/{id} on stock, but stock's contract has no such endpoint",
      ],
    );
    assert.equal(result.handshake, false);
    assert.deepEqual(
      result.services.map((s) => [s.name, s.handshake]),
      [
        ["pricing", false],
        ["stock", true],
        ["restock", true],
      ],
    );
  });
});

describe("handshake pieces", () => {
  const versions: [string, string, Mode, boolean][] = [
    ["2.1.0", "2.1.0", "strict", true],
    ["2.1.0", "2.1.1", "strict", false],
    ["2.1.0", "2.2.0", "relaxed", true],
    ["2.1.0", "2.0.9", "relaxed", false],
    ["2.1.0", "3.0.0", "relaxed", false],
    ["^2.1.0", "2.9.0", "relaxed", true],
    ["^2.1.0", "3.0.0", "relaxed", false],
    [">=2 <3", "2.0.0", "relaxed", true],
    [">=2 <3", "3.1.0", "relaxed", false],
    ["2", "2.5.0", "relaxed", true],
  ];
  for (const [expected, actual, mode, agrees] of versions) {
    it(`${agrees ? "accepts" : "rejects"} ${actual} for ${expected} (${mode})`, () => assert.equal(versionAgrees(expected, actual, mode), agrees));
  }

  it("compares repo URLs without credentials, scheme, port, .git, trailing slash or host case, SSH forms included", () => {
    assert.equal(normalizeRepoUrl("https://bot:tok@Git.Example.com/team/stock.git/"), normalizeRepoUrl("https://git.example.com/team/stock"));
    for (const same of ["git@git.example.com:team/stock.git", "ssh://git@Git.Example.com:2222/team/stock", "http://git.example.com:8080/team/stock.git"])
      assert.equal(normalizeRepoUrl(same), normalizeRepoUrl("https://git.example.com/team/stock"), same);
    assert.notEqual(normalizeRepoUrl("git@git.example.com:team/stock.git"), normalizeRepoUrl("git@git.example.com:team/other.git"));
  });

  it("ignores parameter names and slashes in paths", () => {
    assert.equal(normalizePath("/stock/{productId}"), normalizePath("stock/{id}/"));
    assert.equal(normalizePath("/stock/:id"), normalizePath("/stock/{sku}"));
    assert.notEqual(normalizePath("/stock/{id}"), normalizePath("/stocks/{id}"));
  });

  it("resolves by repo URL before name", () => {
    const services = [aService({ name: "stock", repos: ["https://h/other.git"] }), aService({ name: "warehouse", repos: ["https://h/stock.git"] })];
    assert.equal(resolveDependency(aDependency("stock", { repo: "https://h/stock" }), services)?.name, "warehouse");
    assert.equal(resolveDependency(aDependency("Stock_Service"), services)?.name, "stock");
  });
});

describe("parseService", () => {
  const service =
    "version: 1\nmetadata:\n  name: pricing\n  version: v1.0.0\n  repo: https://h/pricing.git\n  owner: team-a\ndesiredState:\n  stockService:\n    sync: relaxed\n    version: 2.1.0\n    dependencies: [{uuid: a1, name: stock}]\nactualState:\n  handshakeStatus: ok\n";

  it("reads the fields teams write and ignores the rest", () => {
    const manifest = parseService({
      source: "pricing-config",
      service,
      contract: "version: '1.0.0'\napiSpec:\n  endpoints:\n    - method: GET\n      path: /price/{id}\n      summary: x\n",
    });
    assert.equal(manifest.name, "pricing");
    assert.equal(manifest.version, "1.0.0");
    assert.deepEqual(manifest.dependencies, [{ key: "stockService", sync: "relaxed", repo: undefined, version: "2.1.0" }]);
    assert.deepEqual(manifest.contract?.endpoints, [{ method: "GET", path: "/price/{id}" }]);
  });

  it("accepts an OpenAPI 3 document as the contract", () => {
    const openapi =
      "openapi: 3.0.3\ninfo: {title: stock, version: 2.1.0}\npaths:\n  /stock/{id}:\n    get: {}\n    parameters: []\n  /stock/reserve:\n    post: {}\n";
    const manifest = parseService({ source: "s", service: "metadata: {name: stock}", openapi: { name: "openapi.yaml", text: openapi } });
    assert.deepEqual(manifest.contract, { version: "2.1.0", endpoints: [get("/stock/{id}"), { method: "POST", path: "/stock/reserve" }] });
  });

  it("reads one outbound call or a list of them", () => {
    const iface =
      "dependencies:\n  - {name: stock, outbound: {method: GET, path: /a}}\n  - {name: restock, outbound: [{method: POST, path: /b}, {method: GET, path: /c}]}\n";
    const manifest = parseService({ source: "s", service, interface: iface });
    assert.deepEqual(
      manifest.interface?.dependencies.map((d) => d.outbound.length),
      [1, 2],
    );
  });

  const errors: [string, Parameters<typeof parseService>[0], RegExp][] = [
    ["a missing service.yaml", { source: "r" }, /ManifestError: r: service.yaml: file not found$/],
    ["a missing metadata.name", { source: "r", service: "metadata: {version: 1}" }, /ManifestError: r: service.yaml: metadata.name: /],
    [
      "a bad sync value",
      { source: "r", service: "metadata: {name: a}\ndesiredState:\n  b: {sync: sometimes}\n" },
      /ManifestError: r: service.yaml: desiredState.b.sync: /,
    ],
    ["broken YAML", { source: "r", service: "metadata:\n  name: [unclosed\n" }, /ManifestError: r: service.yaml: line \d+, column \d+: invalid YAML/],
    [
      "an endpoint without a path",
      { source: "r", service: "metadata: {name: a}", contract: "apiSpec:\n  endpoints:\n    - {method: GET}\n" },
      /ManifestError: r: contract.yaml: apiSpec.endpoints\[0\].path: /,
    ],
    [
      "a service version that is no version",
      { source: "r", service: "metadata: {name: a, version: banana}" },
      /r: service.yaml: metadata.version: "banana" is not a version/,
    ],
    [
      "a contract version that is no version",
      { source: "r", service: "metadata: {name: a}", contract: "version: banana\n" },
      /r: contract.yaml: version: "banana" is not a version/,
    ],
    [
      "an expected version that is neither a version nor a range",
      { source: "r", service: "metadata: {name: a}\ndesiredState:\n  b: {version: banana}\n" },
      /r: service.yaml: desiredState.b.version: "banana" is neither a version nor a semver range/,
    ],
    [
      "an OpenAPI version that is no version",
      { source: "r", service: "metadata: {name: a}", openapi: { name: "openapi.yaml", text: "openapi: 3.0.3\ninfo: {title: a, version: latest}\n" } },
      /r: openapi.yaml: info.version: "latest" is not a version/,
    ],
  ];
  for (const [name, files, pattern] of errors) it(`names the file and field of ${name}`, () => assert.throws(() => parseService(files), pattern));

  it("accepts the version forms teams write: 1, 1.4, v1.4.2, pre-releases, and ranges where a version is expected", () => {
    for (const version of ["1", "1.4", "v1.4.2", "2.0.0-rc.1", "1.0.0+build.7"])
      assert.doesNotThrow(() => parseService({ source: "r", service: `metadata: {name: a, version: "${version}"}` }));
    for (const range of ["^2.1", ">=2 <3", "~1.2.0", "2.x"])
      assert.doesNotThrow(() => parseService({ source: "r", service: `metadata: {name: a}\ndesiredState:\n  b: {version: "${range}"}\n` }));
  });
});

describe("handshake output", () => {
  const failing = checkHandshake(system({ stock: { contract: { version: "2.2.0", endpoints: [get("/stock/{id}")] } } }), "strict");

  it("prints the JSON the CI contract names", () => {
    const json = JSON.parse(formatResult(failing, "json")) as {
      handshake: boolean;
      mode: string;
      services: { name: string; source: string; failures: { reason: string }[] }[];
    };
    assert.deepEqual(Object.keys(json), ["handshake", "mode", "services", "warnings"]);
    assert.equal(json.services[0]?.source, "pricing-config");
    assert.equal(json.handshake, false);
    assert.deepEqual(
      json.services[0]?.failures.map((f) => f.reason),
      ["VersionMismatch"],
    );
  });

  it("writes one JUnit test case per edge", () => {
    const xml = formatResult(failing, "junit");
    assert.equal(xml.match(/<testcase /g)?.length, 2);
    assert.match(xml, /tests="2" failures="1"/);
    assert.match(
      xml,
      /<failure type="VersionMismatch" message="pricing expects stock 2.1.0 \(strict\), but stock&apos;s contract is 2.2.0"|<failure type="VersionMismatch" message="pricing expects stock 2.1.0 \(strict\), but stock's contract is 2.2.0"/,
    );
  });

  it("annotates GitHub workflows", () => {
    assert.match(formatResult(failing, "github"), /^::error title=VersionMismatch \(pricing -> stock\)::pricing expects stock 2.1.0/m);
  });

  it("prints a table a person reads", () => {
    const text = formatResult(failing, "text");
    assert.match(text, /^SERVICE\s+VERSION\s+HANDSHAKE\s+FAILURES$/m);
    assert.match(text, /^pricing\s+1.0.0\s+FAILED\s+VersionMismatch$/m);
    assert.match(text, /Handshake failed \(strict\): 2\/3 services agree/);
  });
});

/**
 * The seed repos' own mistake: pricing's service.yaml says metadata.name stock-service, the
 * name of the stock service too. Resolution by repo URL finds the right dependency; the
 * report must keep the two services apart by their source.
 */
describe("two services with one name", () => {
  const repo = (name: string): string => `https://git.example.com/shop/${name}-service-config.git`;
  function seed(stockVersion: string): ServiceManifest[] {
    const pricing = aService({
      name: "stock-service",
      repos: [repo("pricing")],
      url: repo("pricing"),
      source: repo("pricing"),
      dependencies: [
        aDependency("stockService", { repo: repo("stock"), version: "2.1.0", sync: "strict" }),
        aDependency("restockService", { repo: repo("restock"), version: "1.0.0", sync: "strict" }),
      ],
    });
    const stock = aService({
      name: "stock-service",
      repos: [repo("stock")],
      url: repo("stock"),
      source: repo("stock"),
      contract: { version: stockVersion, endpoints: [] },
      dependencies: [aDependency("restockService", { repo: repo("restock"), version: "1.1.0", sync: "strict" })],
    });
    const restock = aService({
      name: "restock-service",
      repos: [repo("restock")],
      url: repo("restock"),
      source: repo("restock"),
      contract: { version: "1.0.0", endpoints: [] },
    });
    return [pricing, stock, restock];
  }

  it("lists three services with distinct sources", () => {
    const result = checkHandshake(seed("2.2.0"), "strict");
    assert.deepEqual(
      result.services.map((s) => s.source),
      [repo("pricing"), repo("stock"), repo("restock")],
    );
    assert.deepEqual(
      result.services.map((s) => s.label),
      ["stock-service (pricing-service-config)", "stock-service (stock-service-config)", "restock-service"],
    );
  });

  it("attaches each failure to the service whose edge failed", () => {
    const result = checkHandshake(seed("2.2.0"), "strict");
    // pricing: only the stock bump; stock: only its restock expectation. Never each other's.
    assert.deepEqual(
      result.services[0]?.failures.map((f) => f.message),
      [
        "stock-service (pricing-service-config) expects stock-service (stock-service-config) 2.1.0 (strict), but stock-service (stock-service-config)'s contract is 2.2.0",
      ],
    );
    assert.deepEqual(
      result.services[1]?.failures.map((f) => f.reason),
      ["VersionMismatch"],
    );
    assert.match(result.services[1]?.failures[0]?.message ?? "", /^stock-service \(stock-service-config\) expects restock-service 1\.1\.0/);
    assert.equal(result.services[2]?.failures.length, 0);
  });

  it("warns of the duplicate name in every output, naming both repos, and still checks", () => {
    const result = checkHandshake(seed("2.1.0"), "strict");
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0] ?? "", /2 services are named stock-service: .*pricing-service-config\.git and .*stock-service-config\.git/);
    assert.match(formatResult(result, "text"), /Warnings:\n {2}- 2 services are named stock-service/);
    assert.equal((JSON.parse(formatResult(result, "json")) as { warnings: string[] }).warnings.length, 1);
    assert.match(formatResult(result, "junit"), /<system-out>Warning: 2 services are named stock-service/);
    assert.match(formatResult(result, "github"), /^::warning title=Duplicate service name::2 services are named stock-service/m);
    assert.deepEqual(checkHandshake(seed("2.1.0").slice(1), "strict").warnings, [], "no warning without a duplicate");
  });
});
