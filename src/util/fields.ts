// Field paths for error messages, pure and dependency-free so domain modules can use them.

import type { z } from "zod";

/** "spec.services[1].source.url: Invalid URL": every issue, with the path to the field. */
export function describeZodError(error: z.ZodError, root = "spec"): string {
  return error.issues.map((issue) => `${fieldPath(root, issue.path)}: ${issue.message}`).join("; ");
}

export function fieldPath(root: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, part) => (typeof part === "number" ? `${acc}[${part}]` : `${acc}.${String(part)}`), root);
}
