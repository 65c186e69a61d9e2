// Git object ids computed without a repository: what git would name the same bytes. Pure.

import { createHash } from "node:crypto";

/** The id git gives an object: sha1 of "<type> <size>\0<body>". */
export function gitObjectId(type: "blob" | "tree" | "commit", body: Uint8Array): string {
  return createHash("sha1").update(`${type} ${body.byteLength}\0`).update(body).digest("hex");
}

/** The blob id git gives a file's bytes. */
export function gitBlobId(bytes: Uint8Array): string {
  return gitObjectId("blob", bytes);
}
