// node:http, loaded with require rather than import. An ES import builds the module's
// namespace, which reads node:http's lazy WebSocket, CloseEvent and MessageEvent getters and
// so loads undici: 9 MiB of RSS in every process (17 MiB where nothing else had loaded
// https), for a client nothing here uses. Measured with the chart's Node.js options.

import { createRequire } from "node:module";

export const http = createRequire(import.meta.url)("node:http") as typeof import("node:http");
