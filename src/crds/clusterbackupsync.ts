// ClusterBackupSync (cbs): a git repo holds exactly the backup files that clusters wrote to
// an S3 bucket, as reviewable commits.

import { z } from "zod";
import { commonSpecFields, commonStatusFields, gitUrl, proxySecretRef, s3IdentityStatus, s3LocationWith, secretRef, type KindDefinition } from "./common.js";

export const clusterBackupSyncSpec = z.object({
  ...commonSpecFields,
  source: s3LocationWith({ prefix: z.string().default("clusterbackup/") }),
  destination: z.object({
    url: gitUrl,
    branch: z.string().min(1).default("main"),
    secretRef: secretRef.optional(),
    proxySecretRef: proxySecretRef.optional(),
    path: z.string().default("").describe("Folder in the repo; keys are kept as they are below it."),
    author: z.object({ name: z.string().min(1), email: z.string().min(3) }).default({ name: "gitsync-operator", email: "gitsync-operator@gitsync.dev" }),
  }),
  schedule: z
    .string()
    .regex(/^(\S+\s+){4}\S+$/, "must be a 5-field cron expression")
    .optional()
    .describe("5-field cron; when set, syncs run at these times rather than every interval."),
  timeZone: z.string().optional(),
  include: z.array(z.string()).default([]).describe("Globs over keys to include (default all)."),
  exclude: z.array(z.string()).default([]).describe("Globs over keys to leave out, e.g. **/secrets/**."),
  prune: z.boolean().default(true),
  maxDeletePercent: z.number().int().min(0).max(100).default(50),
  encryption: z
    .object({ recipients: z.array(z.string().regex(/^age1[0-9a-z]+$/, "must be an age public key (age1...)")).min(1), include: z.array(z.string()).min(1) })
    .optional()
    .describe("Files matching include are committed as <path>.age, encrypted to the recipients."),
  concurrency: z.number().int().min(1).max(64).default(10),
  dryRun: z.boolean().default(false),
});

export const clusterBackupSyncStatus = z.object({
  ...commonStatusFields,
  lastSyncTime: z.string().optional(),
  lastSuccessfulSyncTime: z.string().optional(),
  nextSyncTime: z.string().optional(),
  identity: s3IdentityStatus.optional(),
  lastCommit: z.string().optional().describe("The full id of the last commit pushed."),
  lastCommitShort: z.string().optional().describe("The last commit pushed, as branch@sha1:abcdef12."),
  revision: z.string().optional(),
  files: z.number().int().optional(),
  clusters: z.array(z.object({ name: z.string(), files: z.number().int() })).optional(),
  lastChanges: z.object({ added: z.number().int(), modified: z.number().int(), deleted: z.number().int() }).optional(),
  skippedKeys: z
    .array(z.string())
    .optional()
    .describe('Bucket keys that cannot be files ("..", .git, control characters, a file that is also a folder), with the reason; at most 20.'),
});

export type ClusterBackupSyncSpec = z.infer<typeof clusterBackupSyncSpec>;
export type ClusterBackupSyncStatus = z.infer<typeof clusterBackupSyncStatus>;

/** The negative-polarity conditions of a ClusterBackupSync. */
export const ClusterBackupSyncCondition = {
  /** The bucket could not be read. */
  FetchFailed: "FetchFailed",
  /** The destination repository could not be updated. */
  PushFailed: "PushFailed",
  /** Deletions were refused by a guard (an empty listing, maxDeletePercent). */
  PruneRefused: "PruneRefused",
} as const;

export const ClusterBackupSyncReason = {
  Synced: "Synced",
  MissingCredentials: "MissingCredentials",
  InvalidSchedule: "InvalidSchedule",
  /** Bucket keys that cannot be files were left out (a Warning event). */
  KeysSkipped: "KeysSkipped",
} as const;

export const clusterBackupSyncKind: KindDefinition<ClusterBackupSyncSpec, ClusterBackupSyncStatus> = {
  kind: "ClusterBackupSync",
  plural: "clusterbackupsyncs",
  singular: "clusterbackupsync",
  shortNames: ["cbs"],
  spec: clusterBackupSyncSpec,
  status: clusterBackupSyncStatus,
  columns: [
    { name: "Last Sync", type: "date", jsonPath: ".status.lastSuccessfulSyncTime" },
    { name: "Files", type: "integer", jsonPath: ".status.files" },
    { name: "Commit", type: "string", jsonPath: ".status.lastCommitShort" },
  ],
  conditions: Object.values(ClusterBackupSyncCondition),
  sources: (spec, status) => [
    { url: `s3 ${spec.source.endpoint}/${spec.source.bucket}/${spec.source.prefix}` },
    { url: spec.destination.url, ref: `branch ${spec.destination.branch}`, revision: status?.lastCommit },
  ],
  revision: (status) => status?.lastCommitShort,
};
