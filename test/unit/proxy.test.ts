import assert from "node:assert/strict";
import { bypassed, proxyFor, proxyName, proxyUrl } from "../../src/util/proxy.js";
import { refreshing, REFRESH_BEFORE_MS, stsEndpoint, type AwsKeys } from "../../src/s3/credentials.js";
import { redact } from "../../src/util/redact.js";

const https = (hostname: string, port = 443): { protocol: string; hostname: string; port: number } => ({ protocol: "https:", hostname, port });

describe("proxies from the environment", () => {
  const env = { HTTPS_PROXY: "http://proxy.corp:3128", HTTP_PROXY: "http://plain.corp:3128" };

  it("sends https:// and SSH through HTTPS_PROXY, http:// through HTTP_PROXY", () => {
    assert.equal(proxyFor(https("git.example.com"), env), "http://proxy.corp:3128");
    assert.equal(proxyFor({ protocol: "ssh:", hostname: "git.example.com", port: 22 }, env), "http://proxy.corp:3128");
    assert.equal(proxyFor({ protocol: "http:", hostname: "git.example.com", port: 80 }, env), "http://plain.corp:3128");
  });

  it("reads the lower-case variables first, as curl does", () => {
    assert.equal(proxyFor(https("a.example"), { https_proxy: "http://lower:1", HTTPS_PROXY: "http://upper:2" }), "http://lower:1");
  });

  it("takes a proxy given without a scheme as http://", () => {
    assert.equal(proxyFor(https("a.example"), { HTTPS_PROXY: "proxy.corp:3128" }), "http://proxy.corp:3128");
  });

  it("goes direct when no proxy is set", () => {
    assert.equal(proxyFor(https("a.example"), {}), undefined);
    assert.equal(proxyFor({ protocol: "http:", hostname: "a.example", port: 80 }, { HTTPS_PROXY: "http://p:1" }), undefined);
  });

  it("lets an object's own proxy win over the environment and over NO_PROXY", () => {
    const own = { address: "http://own.corp:8080", username: "u", password: "p@ss word" };
    assert.equal(proxyFor(https("a.example"), { ...env, NO_PROXY: "*" }, own), "http://u:p%40ss%20word@own.corp:8080/");
  });

  const table: [string, string, { hostname: string; port?: number }, boolean][] = [
    ["* bypasses everything", "*", { hostname: "anything.example" }, true],
    ["an exact host", "git.example.com", { hostname: "git.example.com" }, true],
    ["a host matches its subdomains", "example.com", { hostname: "git.example.com" }, true],
    ["a leading dot is the same", ".example.com", { hostname: "git.example.com" }, true],
    ["a leading *. is the same", "*.example.com", { hostname: "git.example.com" }, true],
    ["a suffix that is not a label does not match", "ample.com", { hostname: "example.com" }, false],
    ["a host with the wrong port does not match", "git.example.com:8443", { hostname: "git.example.com", port: 443 }, false],
    ["a host with its port matches", "git.example.com:8443", { hostname: "git.example.com", port: 8443 }, true],
    ["an IPv4 address", "10.0.0.7", { hostname: "10.0.0.7" }, true],
    ["an IPv4 CIDR range", "10.0.0.0/8", { hostname: "10.20.30.40" }, true],
    ["outside a CIDR range", "10.0.0.0/8", { hostname: "11.0.0.1" }, false],
    ["an IPv6 CIDR range", "fd00::/8", { hostname: "[fd12::1]" }, true],
    ["a bracketed IPv6 address with a port", "[::1]:8080", { hostname: "::1", port: 8080 }, true],
    ["loopback is not special", "example.com", { hostname: "127.0.0.1" }, false],
    ["entries are separated by commas and spaces, case aside", " Foo.example , GIT.example.com", { hostname: "git.EXAMPLE.com" }, true],
    ["an address does not match as a domain suffix", "0.0.1", { hostname: "127.0.0.1" }, false],
  ];
  for (const [sentence, noProxy, target, expected] of table) {
    it(`NO_PROXY: ${sentence}`, () => assert.equal(bypassed(https(target.hostname, target.port ?? 443), noProxy), expected));
  }

  it("honours NO_PROXY in either case", () => {
    assert.equal(proxyFor(https("git.example.com"), { ...env, no_proxy: "example.com" }), undefined);
    assert.equal(proxyFor(https("git.example.com"), { ...env, NO_PROXY: "example.com" }), undefined);
  });

  it("never shows a proxy's password, and redacts it wherever it appears", () => {
    const url = proxyUrl({ address: "proxy.corp:3128", username: "svc", password: "hunter2-proxy" });
    assert.equal(proxyName(url), "http://proxy.corp:3128");
    assert.equal(redact("407 from proxy, password hunter2-proxy"), "407 from proxy, password ***");
    proxyFor(https("a.example"), { HTTPS_PROXY: "http://svc:env-proxy-pass@proxy.corp:3128" });
    assert.equal(redact("env-proxy-pass"), "***");
  });

  it("refuses a proxy address that is not an http(s) URL", () => {
    assert.throws(() => proxyUrl({ address: "socks5://proxy:1080" }), /must be http:\/\/ or https:\/\//);
  });
});

describe("temporary S3 credentials", () => {
  const keys = (n: number, expiresInMs?: number, now = 0): AwsKeys => ({
    accessKeyId: `AK${n}`,
    secretAccessKey: `secret-${n}`,
    sessionToken: `token-${n}`,
    ...(expiresInMs === undefined ? {} : { expiration: new Date(now + expiresInMs) }),
  });

  it("keeps keys until shortly before they expire, then asks again", async () => {
    let now = 0;
    let calls = 0;
    const provider = refreshing(
      () => Promise.resolve(keys(++calls, 3_600_000, now)),
      () => now,
    );
    assert.equal((await provider()).accessKeyId, "AK1");
    now = 3_600_000 - REFRESH_BEFORE_MS - 1;
    assert.equal((await provider()).accessKeyId, "AK1");
    now = 3_600_000 - REFRESH_BEFORE_MS + 1;
    assert.equal((await provider()).accessKeyId, "AK2");
    assert.equal(calls, 2);
  });

  it("shares one refresh among callers at the same moment", async () => {
    let calls = 0;
    const provider = refreshing(async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return keys(calls);
    });
    const all = await Promise.all([provider(), provider(), provider()]);
    assert.equal(calls, 1);
    assert.deepEqual(new Set(all.map((k) => k.accessKeyId)), new Set(["AK1"]));
  });

  it("does not keep a failed refresh: the next request asks again", async () => {
    let calls = 0;
    const provider = refreshing(() => {
      calls += 1;
      return calls === 1 ? Promise.reject(new Error("STS unavailable")) : Promise.resolve(keys(calls));
    });
    await assert.rejects(provider(), /STS unavailable/);
    assert.equal((await provider()).accessKeyId, "AK2");
  });

  it("reaches STS at AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else the region's", () => {
    assert.equal(stsEndpoint("eu-west-1", { AWS_ENDPOINT_URL_STS: "http://127.0.0.1:9000", AWS_ENDPOINT_URL: "http://x" }), "http://127.0.0.1:9000");
    assert.equal(stsEndpoint("eu-west-1", { AWS_ENDPOINT_URL: "http://x" }), "http://x");
    assert.equal(stsEndpoint("eu-west-1", {}), "https://sts.eu-west-1.amazonaws.com");
  });
});
