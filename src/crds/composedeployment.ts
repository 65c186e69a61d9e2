// ComposeDeployment (cdep): a compose project kept in git runs as Deployments, Services,
// ConfigMaps and PersistentVolumeClaims, and only the services whose rendered objects or
// files changed roll.

import { z } from "zod";
import { parseDuration } from "../util/duration.js";
import { refShown, commonSpecFields, commonStatusFields, duration, gitSource, secretRef, type KindDefinition } from "./common.js";

export const composeDeploymentSpec = z
  .object({
    ...commonSpecFields,
    source: gitSource.describe("The deployment repository; path is the project folder."),
    composeFile: z.string().min(1).optional().describe("Default: compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml, the first that exists."),
    envFile: z.string().min(1).optional().describe("The file variables are interpolated from; default .env (may be absent)."),
    profiles: z
      .array(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$|^\*$/, "must be a compose profile name or *"))
      .max(64)
      .optional()
      .describe(
        'The active compose profiles, as docker compose --profile ("*": all); default COMPOSE_PROFILES of the env file. A service with profiles runs only when one is active.',
      ),
    services: z.array(z.string().min(1)).optional().describe("Deploy only these services (default all)."),
    prune: z.boolean().default(true).describe("Delete objects of services and volumes no longer in the project."),
    wait: z.boolean().default(true).describe("Ready only when every rolled service's rollout completed."),
    dryRun: z.boolean().default(false).describe("Plan and report; apply nothing."),
    rollout: z
      .enum(["Changed", "AllOnProjectChange"])
      .default("Changed")
      .describe("Changed: a service rolls when its own objects or files change. AllOnProjectChange: a compose or env file change rolls every service."),
    decryption: z
      .object({ secretRef: secretRef.describe("Secret with the key identity.agekey: an age identity (AGE-SECRET-KEY-1...).") })
      .optional()
      .describe("Files named X.age in the project are decrypted and used as X."),
    rollback: z.boolean().default(false).describe("When a rollout fails its health check, re-apply the last healthy revision."),
    healthTimeout: duration
      .optional()
      .describe("How long a rollout (and, with rollback, the rollback) may take to become healthy. Default: most of timeout (under half each with rollback)."),
  })
  .superRefine((spec, ctx) => {
    if (!spec.timeout || !spec.healthTimeout) return;
    const waits = spec.rollback ? 2 : 1;
    if (parseDuration(spec.timeout) <= parseDuration(spec.healthTimeout) * waits)
      ctx.addIssue({
        code: "custom",
        path: ["healthTimeout"],
        message: `${spec.healthTimeout}${waits > 1 ? " twice (rollout and rollback)" : ""} does not fit in timeout ${spec.timeout}: raise timeout or lower healthTimeout`,
      });
  });

const serviceStatus = z.object({
  name: z.string(),
  image: z.string(),
  replicas: z.number().int(),
  readyReplicas: z.number().int(),
  hash: z.string(),
  lastRolledAt: z.string().optional(),
  lastRollReason: z.string().optional(),
});

const inventoryEntry = z.object({ apiVersion: z.string(), kind: z.string(), name: z.string() });

export const composeDeploymentStatus = z.object({
  ...commonStatusFields,
  lastAppliedRevision: z.string().optional().describe("The last commit whose rollout completed healthy."),
  lastAttemptedRevision: z.string().optional(),
  shortRevision: z.string().optional().describe("lastAppliedRevision as main@sha1:abcdef12."),
  failedRevision: z.string().optional().describe("A commit rolled back after a failed health check; not retried until the source changes."),
  services: z.array(serviceStatus).optional(),
  serviceCount: z.number().int().optional(),
  readyServices: z.number().int().optional(),
  inventory: z.array(inventoryEntry).optional().describe("The objects applied."),
  notes: z.array(z.string()).optional().describe("Compose keys ignored, per service."),
  plan: z
    .array(z.object({ name: z.string(), action: z.string(), reasons: z.array(z.string()) }))
    .optional()
    .describe("With dryRun: what applying would do."),
});

export type ComposeDeploymentSpec = z.infer<typeof composeDeploymentSpec>;
export type ComposeDeploymentStatus = z.infer<typeof composeDeploymentStatus>;
export type InventoryEntry = z.infer<typeof inventoryEntry>;

/** The negative-polarity conditions of a ComposeDeployment. */
export const ComposeDeploymentCondition = {
  /** The repository could not be read. */
  FetchFailed: "FetchFailed",
  /** The project cannot be deployed as written (stalls until the repository changes). */
  ComposeInvalid: "ComposeInvalid",
  /** An object could not be applied. */
  ApplyFailed: "ApplyFailed",
  /** A rolled service did not become ready within the timeout. */
  HealthCheckFailed: "HealthCheckFailed",
  /** An object no longer rendered could not be deleted. */
  PruneFailed: "PruneFailed",
} as const;

export const ComposeDeploymentReason = {
  Applied: "Applied",
  Rolled: "Rolled",
  Planned: "Planned",
  RolledBack: "RolledBack",
  Pruned: "Pruned",
  MissingSecret: "MissingSecret",
} as const;

export const composeDeploymentKind: KindDefinition<ComposeDeploymentSpec, ComposeDeploymentStatus> = {
  kind: "ComposeDeployment",
  plural: "composedeployments",
  singular: "composedeployment",
  shortNames: ["cdep"],
  spec: composeDeploymentSpec,
  status: composeDeploymentStatus,
  columns: [
    { name: "Services", type: "integer", jsonPath: ".status.serviceCount" },
    { name: "Ready Services", type: "integer", jsonPath: ".status.readyServices" },
    { name: "Revision", type: "string", jsonPath: ".status.shortRevision" },
  ],
  conditions: Object.values(ComposeDeploymentCondition),
  sources: (spec, status) => [{ url: spec.source.url, ref: refShown(spec.source.ref), revision: status?.lastAppliedRevision }],
  revision: (status) => status?.shortRevision,
};
