// Serves a loopback server to pods too: a TCP forward from the bridge's address to the same
// port on 127.0.0.1. Nothing listens beyond loopback and the environment's own bridge.

import net from "node:net";

export class BridgeForward {
  private readonly servers: net.Server[] = [];

  /** Forwards host:port to 127.0.0.1:port. */
  async add(host: string, port: number): Promise<void> {
    const server = net.createServer((inbound) => {
      const outbound = net.connect(port, "127.0.0.1");
      inbound.pipe(outbound).pipe(inbound);
      const close = (): void => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.once("error", close).once("close", close);
      outbound.once("error", close).once("close", close);
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
    this.servers.push(server);
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
