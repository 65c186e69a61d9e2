// ServiceHandshake (shs): the versions and contracts that microservices declare in their
// config repos agree with each other.

import { z } from "zod";
import { commonSpecFields, commonStatusFields, gitSource, resourceOf, type KindDefinition } from "./common.js";

export const serviceHandshakeSpec = z.object({
  ...commonSpecFields,
  mode: z.enum(["Strict", "Relaxed"]).default("Strict").describe("Strict: versions equal. Relaxed: semver-compatible or in range. An edge's own sync: strict wins."),
  services: z
    .array(
      z.object({
        name: z.string().optional().describe("A label for messages; the name in service.yaml is what dependencies resolve against."),
        source: gitSource.describe("The service's config repo; path is the folder holding service.yaml."),
      }),
    )
    .min(1)
    .max(500),
  writeBack: z.boolean().default(false).describe("Commit the result into each service.yaml actualState when it changes."),
});

const failure = z.object({ dependency: z.string(), reason: z.string(), message: z.string() });

export const serviceHandshakeStatus = z.object({
  ...commonStatusFields,
  handshake: z.boolean().optional(),
  servicesTotal: z.number().int().optional(),
  servicesFailed: z.number().int().optional(),
  services: z
    .array(z.object({ name: z.string(), version: z.string().optional(), revision: z.string().optional(), handshake: z.boolean(), failures: z.array(failure).optional() }))
    .optional(),
  lastCheckedAt: z.string().optional(),
});

export type ServiceHandshakeSpec = z.infer<typeof serviceHandshakeSpec>;
export type ServiceHandshakeStatus = z.infer<typeof serviceHandshakeStatus>;

export const serviceHandshakeKind: KindDefinition = {
  kind: "ServiceHandshake",
  plural: "servicehandshakes",
  singular: "servicehandshake",
  shortNames: ["shs"],
  spec: serviceHandshakeSpec,
  status: serviceHandshakeStatus,
  columns: [
    { name: "Handshake", type: "boolean", jsonPath: ".status.handshake" },
    { name: "Services", type: "integer", jsonPath: ".status.servicesTotal" },
    { name: "Failed", type: "integer", jsonPath: ".status.servicesFailed" },
  ],
};

export const SERVICE_HANDSHAKE_RESOURCE = resourceOf(serviceHandshakeKind);
