import assert from "node:assert/strict";
import { z } from "zod";
import { commonSpecFields, commonStatusFields, gitSource, type KindDefinition } from "../../src/crds/common.js";
import { crdManifest, structural } from "../../src/crds/generate.js";
import { staleCrds } from "../../hack/gen-crds.js";

const sample: KindDefinition = {
  kind: "Sample",
  plural: "samples",
  singular: "sample",
  shortNames: ["smp"],
  spec: z.object({
    ...commonSpecFields,
    source: gitSource,
    mode: z.enum(["Strict", "Relaxed"]).default("Strict"),
    labels: z.record(z.string(), z.string()).optional(),
  }),
  status: z.object({ ...commonStatusFields, handshake: z.boolean().optional() }),
  columns: [{ name: "Handshake", type: "boolean", jsonPath: ".status.handshake" }],
  conditions: [],
};

function walk(node: unknown, visit: (schema: Record<string, unknown>, path: string) => void, path = ""): void {
  if (!node || typeof node !== "object") return;
  const schema = node as Record<string, unknown>;
  visit(schema, path);
  for (const [key, value] of Object.entries(schema.properties ?? {})) walk(value, visit, `${path}.${key}`);
  if (schema.items) walk(schema.items, visit, `${path}[]`);
  if (schema.additionalProperties && typeof schema.additionalProperties === "object") walk(schema.additionalProperties, visit, `${path}{}`);
}

describe("CRD generation", () => {
  const crd = crdManifest(sample) as { spec: { names: Record<string, unknown>; versions: Record<string, unknown>[] } };
  const version = crd.spec.versions[0] as { schema: { openAPIV3Schema: unknown }; additionalPrinterColumns: { name: string }[]; subresources: unknown };

  it("writes a structural schema: a type everywhere, no $ref, no additionalProperties beside properties", () => {
    walk(version.schema.openAPIV3Schema, (schema, path) => {
      assert.ok(!("$ref" in schema), `${path} has no $ref`);
      assert.ok(!("$schema" in schema), `${path} has no $schema`);
      assert.ok(!(schema.properties && "additionalProperties" in schema), `${path} has no additionalProperties beside properties`);
      assert.ok(typeof schema.type === "string" || schema["x-kubernetes-preserve-unknown-fields"], `${path} has a type`);
    });
  });

  it("stores v1beta1 and serves v1alpha1 with the same schema, deprecated, converting by apiVersion alone", () => {
    const full = crd as unknown as {
      spec: {
        conversion: unknown;
        versions: { name: string; served: boolean; storage: boolean; deprecated?: boolean; deprecationWarning?: string; schema: unknown }[];
      };
    };
    assert.deepEqual(
      full.spec.versions.map((v) => [v.name, v.served, v.storage, v.deprecated ?? false]),
      [
        ["v1beta1", true, true, false],
        ["v1alpha1", true, false, true],
      ],
    );
    assert.deepEqual(full.spec.conversion, { strategy: "None" });
    assert.deepEqual(full.spec.versions[1]?.schema, full.spec.versions[0]?.schema);
    assert.match(full.spec.versions[1]?.deprecationWarning ?? "", /gitsync\.dev\/v1alpha1 \w+ is deprecated; use gitsync\.dev\/v1beta1/);
    // A kind with a version of its own (a test's) is served at that version only.
    assert.equal((crdManifest({ ...sample, group: "e2e.gitsync.dev", version: "v1alpha1" }) as typeof full).spec.versions.length, 1);
  });

  it("carries the CEL rule for exactly one of branch, tag or commit", () => {
    const ref = structural(gitSource).properties as Record<string, Record<string, unknown>>;
    assert.deepEqual((ref.ref?.["x-kubernetes-validations"] as { message: string }[])[0]?.message, "exactly one of branch, tag or commit must be set");
  });

  it("keys conditions by type, as a map list", () => {
    const status = structural(sample.status).properties as Record<string, Record<string, unknown>>;
    assert.equal(status.conditions?.["x-kubernetes-list-type"], "map");
    assert.deepEqual(status.conditions?.["x-kubernetes-list-map-keys"], ["type"]);
  });

  it("keeps defaults for the API server to apply, and does not require defaulted fields", () => {
    const spec = structural(sample.spec) as { properties: Record<string, { default?: unknown }>; required?: string[] };
    assert.equal(spec.properties.mode?.default, "Strict");
    assert.ok(!spec.required?.includes("mode"));
  });

  it("has the status subresource, short names, the gitsync category and the printer columns in order", () => {
    assert.deepEqual(version.subresources, { status: {} });
    assert.deepEqual(crd.spec.names.shortNames, ["smp"]);
    assert.deepEqual(crd.spec.names.categories, ["gitsync"]);
    assert.deepEqual(
      version.additionalPrinterColumns.map((c) => c.name),
      ["Ready", "Handshake", "Age", "Status"],
    );
  });

  it("finds deploy/crds up to date with src/crds, and the chart's values, their schema and the README's table with hack/chart-values.ts", () => {
    assert.deepEqual(staleCrds(), [], "run npm run gen:crds");
  });
});
