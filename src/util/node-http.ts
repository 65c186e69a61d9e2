// node:http, loaded with require rather than import. An ES import builds the module's
// namespace, which reads node:http's lazy WebSocket, CloseEvent and MessageEvent getters and
// so loads undici: 9 MiB of RSS in every process (17 MiB where nothing else had loaded
// https), for a client nothing here uses. Measured with the chart's Node.js options.

import { createRequire } from "node:module";

export const http = createRequire(import.meta.url)("node:http") as typeof import("node:http");

/** A body's bytes; past `limit` bytes the rest is read and dropped (an error page read for its code, a body drained). */
export async function collect(body: AsyncIterable<Uint8Array> | Uint8Array[], limit = Infinity): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < limit) chunks.push(chunk);
    size += chunk.byteLength;
  }
  return Buffer.concat(chunks);
}
