// ServiceHandshake (shs): the versions and contracts that microservices declare in their
// config repos agree with each other.

import { z } from "zod";
import { refShown, commonSpecFields, commonStatusFields, gitSource, type KindDefinition } from "./common.js";

export const serviceHandshakeSpec = z.object({
  ...commonSpecFields,
  mode: z
    .enum(["Strict", "Relaxed"])
    .default("Strict")
    .describe("Strict: versions equal. Relaxed: semver-compatible or in range. An edge's own sync: strict wins."),
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
    .array(
      z.object({
        name: z.string().describe("The service's name, or name (repo) where two services share a name."),
        source: z.string().optional().describe("The repository (and path) the service was read from: its identity."),
        version: z.string().optional(),
        revision: z.string().optional(),
        handshake: z.boolean(),
        failures: z.array(failure).optional(),
      }),
    )
    .optional(),
  warnings: z.array(z.string()).optional().describe("Problems that do not fail the handshake, such as two services with one name."),
  lastCheckedAt: z.string().optional(),
});

export type ServiceHandshakeSpec = z.infer<typeof serviceHandshakeSpec>;
export type ServiceHandshakeStatus = z.infer<typeof serviceHandshakeStatus>;

/** The negative-polarity conditions of a ServiceHandshake, each owned by one step. */
export const ServiceHandshakeCondition = {
  FetchFailed: "FetchFailed",
  ManifestInvalid: "ManifestInvalid",
  HandshakeFailed: "HandshakeFailed",
  PushFailed: "PushFailed",
} as const;

export const ServiceHandshakeReason = { HandshakeSucceeded: "HandshakeSucceeded", WroteBack: "WroteBack" } as const;

export const serviceHandshakeKind: KindDefinition<ServiceHandshakeSpec, ServiceHandshakeStatus> = {
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
  conditions: Object.values(ServiceHandshakeCondition),
  sources: (spec, status) =>
    spec.services.map((service, index) => ({
      url: service.source.url,
      ref: refShown(service.source.ref),
      revision: status?.services?.[index]?.revision,
    })),
  revision: (status) => {
    const revisions = new Set((status?.services ?? []).map((s) => s.revision).filter(Boolean));
    return revisions.size === 0 ? undefined : revisions.size === 1 ? [...revisions][0]?.slice(0, 12) : `${revisions.size} revisions`;
  },
};
