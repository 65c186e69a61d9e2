// The operator's HTTP endpoint: /metrics, /healthz, /readyz, and routes that kinds add
// (the git webhook receivers).

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { http } from "../util/node-http.js";
import type { AddressInfo } from "node:net";
import { registry } from "./metrics.js";
import { errorText, type Logger } from "../util/log.js";

export type RouteHandler = (req: IncomingMessage, body: Buffer) => Promise<{ status: number; body: unknown }>;

const MAX_BODY = 5 * 1024 * 1024;

export class OperatorServer {
  private readonly routes = new Map<string, RouteHandler>();
  private readonly server: Server;
  ready: () => boolean = () => false;

  constructor(private readonly log: Logger) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  /** Adds a POST route, e.g. /hooks/git. */
  route(path: string, handler: RouteHandler): void {
    this.routes.set(path, handler);
  }

  async listen(address: string): Promise<string> {
    const { host, port } = parseAddress(address);
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, resolve);
    });
    const bound = this.server.address() as AddressInfo;
    return `${bound.address}:${bound.port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    try {
      if (req.method === "GET" && path === "/metrics") {
        return send(res, 200, await registry.metrics(), registry.contentType);
      }
      if (req.method === "GET" && path === "/healthz") return send(res, 200, "ok");
      if (req.method === "GET" && path === "/readyz") return this.ready() ? send(res, 200, "ok") : send(res, 503, "caches not synced");
      const handler = this.routes.get(path);
      if (!handler) return send(res, 404, "not found");
      if (req.method !== "POST") return send(res, 405, "method not allowed");
      const body = await readBody(req);
      const answer = await handler(req, body);
      return send(res, answer.status, JSON.stringify(answer.body), "application/json");
    } catch (err) {
      this.log.error("Failed to serve request", { path, error: errorText(err) });
      return send(res, 500, "internal error");
    }
  }
}

function send(res: ServerResponse, status: number, body: string, contentType = "text/plain"): void {
  res.writeHead(status, { "Content-Type": contentType });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) req.destroy(new Error("request body too large"));
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** ":8080" → all interfaces; "127.0.0.1:0" → a free port on loopback. */
export function parseAddress(address: string): { host: string | undefined; port: number } {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at);
  return { host: host || undefined, port: Number(address.slice(at + 1)) };
}
