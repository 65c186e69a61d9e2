// Validation against the compose specification's own JSON schema (compose-spec.json, from
// the compose-spec project's compose-go module; see README.md in this folder), with ajv.
// Errors name the file and the field in compose's dotted form: services.web.ports[0].

import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import { ajv2020 } from "../util/lazy.js";
import schema from "./compose-spec.json" with { type: "json" };

/** Loaded and compiled on first use: an operator with no ComposeDeployment never holds the validator. */
let validator: ValidateFunction | undefined;
const compiled = (): ValidateFunction => (validator ??= new (ajv2020().Ajv2020)({ allErrors: true, strict: false, validateFormats: false }).compile(schema));

/** `/services/web/ports/0` as `services.web.ports[0]`. */
export function dottedPath(pointer: string): string {
  return pointer
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((out, part) => (/^\d+$/.test(part) ? `${out}[${part}]` : out ? `${out}.${part}` : part), "");
}

function describe(error: ErrorObject): string {
  const where = dottedPath(error.instancePath) || "(top level)";
  if (error.keyword === "additionalProperties" || error.keyword === "unevaluatedProperties") {
    const params = error.params as { additionalProperty?: string; unevaluatedProperty?: string };
    const key = params.additionalProperty ?? params.unevaluatedProperty;
    if (!key) return "";
    return `${error.instancePath ? `${where}.` : ""}${key}: not a key the compose specification defines`;
  }
  return `${where}: ${error.message ?? "is invalid"}`;
}

/**
 * The schema's errors, most specific first: for a value that fails every branch of a oneOf,
 * ajv reports each branch; the deepest path is the one a person has to fix.
 */
export function validateCompose(model: unknown): string[] {
  const validate = compiled();
  if (validate(model)) return [];
  const all = validate.errors ?? [];
  const errors = all.filter((e) => e.keyword !== "oneOf" && e.keyword !== "anyOf" && !isParentOfAnother(e, all));
  const deepest = Math.max(...errors.map((e) => e.instancePath.split("/").length));
  const chosen = errors.filter((e) => e.instancePath.split("/").length === deepest || e.keyword.endsWith("Properties"));
  return [...new Set((chosen.length ? chosen : all).map(describe))].filter(Boolean).slice(0, 5);
}

/** An unevaluated key that only failed because its own value failed: the deeper error says more. */
function isParentOfAnother(error: ErrorObject, all: ErrorObject[]): boolean {
  const key = (error.params as { unevaluatedProperty?: string }).unevaluatedProperty;
  if (error.keyword !== "unevaluatedProperties" || !key) return false;
  const child = `${error.instancePath}/${key}`;
  return all.some((other) => other !== error && (other.instancePath === child || other.instancePath.startsWith(`${child}/`)));
}
