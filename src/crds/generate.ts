// Turns a KindDefinition into a CustomResourceDefinition: an openapi-3.0 structural schema
// (no $ref, no additionalProperties beside properties), status subresource, printer
// columns, short names and the gitsync category.

import { z } from "zod";
import { CATEGORY, DEPRECATED_VERSIONS, GROUP, VERSION, type KindDefinition, type PrinterColumn } from "./common.js";

type Schema = Record<string, unknown>;

const READY_COLUMN: PrinterColumn = { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' };
const STATUS_COLUMN: PrinterColumn = { name: "Status", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].message' };
const AGE_COLUMN: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };
const SAFE_INTEGER_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

export function crdManifest(def: KindDefinition): Schema {
  const group = def.group ?? GROUP;
  const served = (): Schema => ({
    subresources: { status: {} },
    // Status last: it is the long column, as in Flux.
    additionalPrinterColumns: [READY_COLUMN, ...def.columns, AGE_COLUMN, STATUS_COLUMN],
    schema: {
      openAPIV3Schema: {
        type: "object",
        description: `${def.kind} is a gitsync.dev resource.`,
        properties: {
          apiVersion: { type: "string" },
          kind: { type: "string" },
          metadata: { type: "object" },
          spec: structural(def.spec),
          status: structural(def.status),
        },
        required: ["spec"],
      },
    },
  });
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${def.plural}.${group}` },
    spec: {
      group,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: def.categories ?? [CATEGORY],
      },
      scope: "Namespaced",
      conversion: { strategy: "None" },
      // The schemas are the same at every version, so the API server converts by apiVersion alone (conversion None).
      versions: [
        { name: def.version ?? VERSION, served: true, storage: true, ...served() },
        ...(def.version ? [] : DEPRECATED_VERSIONS).map((name) => ({
          name,
          served: true,
          storage: false,
          deprecated: true,
          deprecationWarning: `${group}/${name} ${def.kind} is deprecated; use ${group}/${VERSION}`,
          ...served(),
        })),
      ],
    },
  };
}

/** The openapi-3.0 schema of a zod type, cleaned to what the API server calls structural. */
export function structural(type: z.ZodType): Schema {
  return clean(z.toJSONSchema(type, { target: "openapi-3.0", io: "input", unrepresentable: "any" }));
}

function clean(node: unknown): Schema {
  if (Array.isArray(node)) return node.map(clean) as unknown as Schema;
  if (!node || typeof node !== "object") return node as Schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "$schema" || key === "id") continue;
    if (key === "additionalProperties" && ("properties" in node || value === false)) continue;
    if ((key === "minimum" || key === "maximum") && SAFE_INTEGER_BOUNDS.has(value as number)) continue;
    out[key] = key === "default" || key === "enum" || key === "x-kubernetes-list-map-keys" ? value : clean(value);
  }
  return out;
}
