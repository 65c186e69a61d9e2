// isomorphic-git's HTTP transport on node:http(s), so that a Secret's ca.crt is honoured
// and credentials travel in a header (never in the URL). Counts requests per service so
// callers and tests can see that an unchanged remote cost no packfile.

import type { IncomingMessage } from "node:http";
import { collect, http } from "../util/node-http.js";
import https from "node:https";
import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git";
import { proxyAgentOptions, proxyName } from "../util/proxy.js";

export interface TransportStats {
  /** Fetch negotiations: the requests that can carry a packfile. */
  fetches: number;
  /** Ref listings: protocol v2 ls-refs and v1 advertisements. */
  refListings: number;
  pushes: number;
  /** Bytes of git-upload-pack responses: the packfiles, and the negotiation around them. */
  received: number;
}

export interface ReleasableHttpClient extends HttpClient {
  /**
   * Ends every connection, the idle keep-alive ones included. Called when an operation ends:
   * an operator polling 1,000 repositories a minute would otherwise hold an idle socket per
   * repository for as long as each server keeps it open.
   */
  release(): void;
}

/** How the client connects: a CA to trust, a client certificate, and the proxy chosen for the repository (util/proxy.ts). */
export interface HttpClientOptions {
  caCert?: string;
  tlsCert?: string;
  tlsKey?: string;
  proxy?: string;
}

export function createHttpClient(options: HttpClientOptions = {}, stats?: TransportStats): ReleasableHttpClient {
  const { caCert, tlsCert, tlsKey, proxy } = options;
  const agents = {
    https: new https.Agent({
      keepAlive: true,
      ...proxyAgentOptions(proxy),
      ...(caCert ? { ca: caCert } : {}),
      ...(tlsCert && tlsKey ? { cert: tlsCert, key: tlsKey } : {}),
    }),
    http: new http.Agent({ keepAlive: true, ...proxyAgentOptions(proxy, false) }),
  };
  return {
    release() {
      agents.http.destroy();
      agents.https.destroy();
    },
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const url = new URL(req.url);
      const body = req.body ? await collect(req.body) : undefined;
      if (stats) count(stats, req.method ?? "GET", url, body);
      const transport = url.protocol === "https:" ? https : http;
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        const outgoing = transport.request(
          url,
          { method: req.method ?? "GET", headers: withLength(req.headers, body), agent: url.protocol === "https:" ? agents.https : agents.http },
          resolve,
        );
        outgoing.on("error", (err: Error) => reject(proxy ? viaProxy(err, proxy) : err));
        outgoing.end(body);
      });
      if (proxy && response.statusCode === 407) {
        response.resume();
        throw new Error(
          `proxy ${proxyName(proxy)} refused the request: HTTP 407 ${response.statusMessage ?? ""} (check the proxy's username and password)`.trim(),
        );
      }
      return {
        url: req.url,
        method: req.method,
        statusCode: response.statusCode ?? 0,
        statusMessage: response.statusMessage ?? "",
        headers: response.headers as Record<string, string>,
        body: counted(response[Symbol.asyncIterator]() as AsyncIterableIterator<Uint8Array>, stats, url.pathname.endsWith("/git-upload-pack")),
      };
    },
  };
}

/**
 * The request's headers with its body's length: a body sent chunked is refused by some proxies
 * (tinyproxy hangs up on it) and servers, and the whole body is in hand anyway.
 */
function withLength(headers: Record<string, string> | undefined, body: Buffer | undefined): Record<string, string> {
  if (!body) return headers ?? {};
  return { ...headers, "Content-Length": String(body.byteLength) };
}

/** A connection error through a proxy, naming the proxy (never its credentials). */
function viaProxy(err: Error, proxy: string): Error {
  return Object.assign(new Error(`${err.message} (via proxy ${proxyName(proxy)})`, { cause: err }), { code: (err as { code?: string }).code });
}

function count(stats: TransportStats, method: string, url: URL, body: Buffer | undefined): void {
  const service = url.pathname.split("/").pop();
  if (method === "POST" && (service === "git-upload-pack" || service === "git-receive-pack")) countRequest(stats, service, body);
  else if (url.pathname.endsWith("/info/refs") && url.searchParams.get("service") === "git-upload-pack") stats.refListings += 1;
}

/** Counts one request of a git service by what its body asks for; shared by the HTTP and SSH transports. */
export function countRequest(stats: TransportStats, service: "git-upload-pack" | "git-receive-pack", body: Buffer | undefined): void {
  if (service === "git-receive-pack") stats.pushes += 1;
  else if (body?.subarray(0, 64).includes("command=ls-refs")) stats.refListings += 1;
  else stats.fetches += 1;
}

/** A response body that adds its bytes to stats.received as it is read (upload-pack only). */
export function counted(body: AsyncIterableIterator<Uint8Array>, stats: TransportStats | undefined, uploadPack: boolean): AsyncIterableIterator<Uint8Array> {
  if (!stats || !uploadPack) return body;
  return (async function* () {
    for await (const chunk of body) {
      stats.received += chunk.byteLength;
      yield chunk;
    }
  })();
}
