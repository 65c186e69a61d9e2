// Argo CD's view of an object: the kind's generated health script, run by a real Lua 5.1
// interpreter (Argo CD runs gopher-lua, which is Lua 5.1) with `obj` set to the object as
// the API server returned it.

import { execFileSync } from "node:child_process";
import type { KindDefinition } from "../../src/crds/common.js";
import { argoHealthScript } from "../../src/crds/health.js";

/** A JSON value as a Lua table constructor; null leaves the key out, as Argo CD's conversion does. */
export function luaLiteral(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  if (typeof value === "string") return luaString(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `{${value.map(luaLiteral).join(", ")}}`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined);
  return `{${entries.map(([k, v]) => `[${luaString(k)}] = ${luaLiteral(v)}`).join(", ")}}`;
}

function luaString(text: string): string {
  // Decimal escapes for every byte outside printable ASCII: valid in Lua 5.1 strings.
  const bytes = [...Buffer.from(text, "utf8")];
  return `"${bytes.map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${String(b).padStart(3, "0")}`)).join("")}"`;
}

export function argoHealth(kind: KindDefinition, object: unknown): { status: string; message: string } {
  const program = `obj = ${luaLiteral(object)}\nlocal hs = (function()\n${argoHealthScript(kind)}\nend)()\nio.write(hs.status, "\\n", hs.message or "")\n`;
  const out = execFileSync("lua5.1", ["-"], { input: program, encoding: "utf8" });
  const [status = "", ...message] = out.split("\n");
  return { status, message: message.join("\n") };
}
