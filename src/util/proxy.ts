// Which proxy an outgoing connection goes through, decided in one place for git over HTTP(S)
// and SSH, S3 and STS. The environment is read as curl reads it: https_proxy / HTTPS_PROXY for
// https:// (and for SSH, tunnelled with CONNECT), http_proxy / HTTP_PROXY for http://, the lower
// case first; NO_PROXY alone decides what bypasses the proxy (loopback is not special). An
// object's own proxy (Flux's proxySecretRef: address, username, password) is used for all of
// its connections. The agents are Node.js's own, given the chosen proxy as `proxyEnv`.

import { BlockList, isIP } from "node:net";
import type { AgentOptions } from "node:https";
import { http } from "./node-http.js";
import { registerSecret, safeUrl } from "./redact.js";

export type Env = Record<string, string | undefined>;

/** Where a connection goes: a URL's protocol ("https:", "http:" or "ssh:"), host name and port. */
export interface Target {
  protocol: string;
  hostname: string;
  port: number;
}

/** The target of an http(s):// URL, its port defaulted by its scheme. */
export function urlTarget(url: URL): Target {
  return { protocol: url.protocol, hostname: url.hostname, port: Number(url.port || (url.protocol === "http:" ? 80 : 443)) };
}

/** An object's own proxy, from its proxySecretRef. */
export interface ProxySecret {
  address: string;
  username?: string;
  password?: string;
}

/** The proxy URL (credentials included) a connection to `target` goes through, or undefined to go direct. */
export function proxyFor(target: Target, env: Env = process.env, own?: ProxySecret): string | undefined {
  if (own) return proxyUrl(own);
  const secure = target.protocol !== "http:";
  const proxy = secure ? (env.https_proxy ?? env.HTTPS_PROXY) : (env.http_proxy ?? env.HTTP_PROXY);
  if (!proxy) return undefined;
  if (bypassed(target, env.no_proxy ?? env.NO_PROXY ?? "")) return undefined;
  registerProxyPassword(proxy);
  return proxy.includes("://") ? proxy : `http://${proxy}`;
}

/** A proxySecretRef's values as one URL; the password is registered for redaction. */
export function proxyUrl(secret: ProxySecret): string {
  let url: URL;
  try {
    url = new URL(secret.address.includes("://") ? secret.address : `http://${secret.address}`);
  } catch {
    throw new Error(`the proxy address ${JSON.stringify(safeUrl(secret.address))} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`the proxy address must be http:// or https://, not ${url.protocol}`);
  if (secret.username !== undefined) url.username = encodeURIComponent(secret.username);
  if (secret.password !== undefined) url.password = encodeURIComponent(secret.password);
  registerProxyPassword(url.toString());
  return url.toString();
}

/** The proxy as it may be shown: its address without credentials. */
export function proxyName(proxy: string): string {
  return safeUrl(proxy).replace(/\/$/, "");
}

/**
 * Agent options that send every request of the agent through `proxy` (Node.js's own proxy
 * support). A plain-HTTP request through a proxy gets a connection of its own: proxies such as
 * tinyproxy relay one request per client connection and then only pass bytes through, so a
 * second request on a kept-alive connection reaches the server in proxy form, or nowhere.
 * A CONNECT tunnel (https://) is the server's own connection and stays kept alive.
 */
export function proxyAgentOptions(proxy: string | undefined, secure = true): Pick<AgentOptions, "proxyEnv" | "keepAlive"> {
  if (!proxy) return {};
  return { proxyEnv: { HTTPS_PROXY: proxy, HTTP_PROXY: proxy }, ...(secure ? {} : { keepAlive: false }) };
}

/**
 * Whether NO_PROXY lists the target: `*`; a host name, which also matches its subdomains (a
 * leading `.` or `*.` is the same); an IP address or an IPv4/IPv6 CIDR range; each with an
 * optional `:port` that the target's port must equal.
 */
export function bypassed(target: Target, noProxy: string): boolean {
  const host = target.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") return true;
    const { name, port } = splitPort(entry);
    if (port !== undefined && port !== target.port) continue;
    if (name.includes("/")) {
      if (inRange(host, name)) return true;
      continue;
    }
    const bare = name.replace(/^\*?\./, "");
    if (host === bare || (!isIP(host) && host.endsWith(`.${bare}`))) return true;
  }
  return false;
}

function splitPort(entry: string): { name: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { name: bracketed[1] ?? "", port: bracketed[2] ? Number(bracketed[2]) : undefined };
  const colons = entry.split(":").length - 1;
  const withPort = colons === 1 ? /^(.*):(\d+)$/.exec(entry) : null;
  return withPort ? { name: withPort[1] ?? "", port: Number(withPort[2]) } : { name: entry };
}

function inRange(host: string, cidr: string): boolean {
  const [network, bits] = cidr.split("/");
  const family = isIP(network ?? "");
  if (!family || family !== isIP(host) || !bits || !/^\d+$/.test(bits)) return false;
  const list = new BlockList();
  const type = family === 4 ? "ipv4" : "ipv6";
  list.addSubnet(network ?? "", Number(bits), type);
  return list.check(host, type);
}

function registerProxyPassword(proxy: string): void {
  try {
    const url = new URL(proxy.includes("://") ? proxy : `http://${proxy}`);
    if (url.password) {
      registerSecret(decodeURIComponent(url.password));
      registerSecret(url.password);
    }
  } catch {
    registerSecret(proxy);
  }
}

/**
 * A TCP connection to host:port tunnelled through an HTTP proxy with CONNECT (git over SSH).
 * Fails with the proxy's answer, naming the proxy without its credentials.
 */
export async function tunnel(proxy: string, host: string, port: number, timeoutMs: number): Promise<import("node:net").Socket> {
  const url = new URL(proxy);
  if (url.protocol !== "http:") throw new Error(`proxy ${proxyName(proxy)}: only http:// proxies can tunnel SSH`);
  const headers: Record<string, string> = { Host: `${host}:${port}` };
  if (url.username || url.password) {
    const basic = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64");
    registerSecret(basic);
    headers["Proxy-Authorization"] = `Basic ${basic}`;
  }
  const authority = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const request = http.request({
      hostname: url.hostname,
      port: url.port || 80,
      method: "CONNECT",
      path: authority,
      headers,
      timeout: timeoutMs,
      agent: false,
    });
    request.once("connect", (response, socket) => {
      if (response.statusCode === 200) {
        request.setTimeout(0);
        return resolve(socket);
      }
      socket.destroy();
      reject(new Error(`proxy ${proxyName(proxy)} refused the tunnel to ${authority}: HTTP ${response.statusCode} ${response.statusMessage ?? ""}`.trim()));
    });
    request.once("timeout", () => request.destroy(new Error(`proxy ${proxyName(proxy)}: no answer in ${timeoutMs / 1000}s`)));
    request.once("error", (err: NodeJS.ErrnoException) => {
      const reason = err.message.startsWith("proxy ") ? err.message : `${err.code ?? ""} ${err.message}`.trim();
      reject(new Error(reason.startsWith("proxy ") ? reason : `proxy ${proxyName(proxy)}: ${reason}`, { cause: err }));
    });
    request.end();
  });
}
