// PartitionSync (psync): git repos mirrored across a network partition through an S3 bucket,
// age-encrypted, in the wire format of the git-partition-sync tool (and incrementally, as git
// bundles, where both sides are ours). One kind, two roles: the producer on the open side,
// the consumer inside.

import { z } from "zod";
import {
  commonSpecFields,
  commonStatusFields,
  gitServerUrl,
  gitUrl,
  proxySecretRef,
  s3IdentityStatus,
  s3Location,
  secretRef,
  type KindDefinition,
} from "./common.js";

const branch = z.string().min(1).max(255);

const producerRepo = z.object({
  source: z.object({
    url: gitUrl.describe("The source repository: https://, ssh:// or scp-like user@host:path."),
    branch: branch.describe("The branch whose tip is shipped."),
    secretRef: secretRef.optional().describe("Secret with username + password (or token), or bearerToken; optional ca.crt, tls.crt and tls.key."),
    proxySecretRef: proxySecretRef.optional(),
  }),
  destination: z.object({
    group: z.string().min(1).describe("The destination project's group (subgroups with /)."),
    project: z.string().min(1),
    branch: branch.describe("The destination branch; may differ from the source branch."),
  }),
});

export const partitionSyncSpec = z
  .object({
    ...commonSpecFields,
    role: z.enum(["Producer", "Consumer"]),
    bucket: s3Location,
    repos: z.array(producerRepo).optional().describe("Producer: the repositories to ship."),
    recipients: z
      .array(z.string().regex(/^age1[0-9a-z]+$/, "must be an age public key (age1...)"))
      .optional()
      .describe("Producer: the age public keys objects are encrypted to."),
    signingKeySecretRef: secretRef.optional().describe("Producer: Secret with signing.key, an Ed25519 private key (PEM); objects are signed."),
    format: z.enum(["Tarball", "Bundle", "Both"]).default("Tarball").describe("Tarball: the old tool's format. Bundle: only new objects. Both."),
    fullEvery: z.number().int().min(1).default(50).describe("Bundle format: a new full object after this many bundles."),
    destination: z
      .object({
        baseUrl: gitServerUrl.describe(
          "The destination git server: https://host, ssh://user@host[:port] or user@host:. The push URL is <baseUrl>/<group>/<project>.git.",
        ),
        secretRef: secretRef.optional().describe("Secret with username + password (or token)."),
        caSecretRef: secretRef.optional().describe("Secret with ca.crt for the destination's TLS."),
        proxySecretRef: proxySecretRef.optional(),
      })
      .optional()
      .describe("Consumer: where repositories are pushed."),
    identitySecretRef: secretRef.optional().describe("Consumer: Secret with identity.agekey, the age identity (AGE-SECRET-KEY-1...)."),
    verify: z.array(z.string().min(1)).optional().describe("Consumer: trusted Ed25519 public keys (PEM); unsigned or badly signed objects are refused."),
    push: z
      .enum(["Force", "FastForward"])
      .default("FastForward")
      .describe("FastForward never rewrites a destination branch; Force is the old tool's behaviour."),
    maxExtractBytes: z
      .number()
      .int()
      .min(1)
      .default(2 * 1024 ** 3)
      .describe("Consumer: the most bytes one archive may hold uncompressed."),
    dryRun: z.boolean().default(false),
  })
  .meta({
    "x-kubernetes-validations": [
      { rule: "self.role != 'Producer' || (has(self.repos) && has(self.recipients))", message: "a Producer needs repos and recipients" },
      {
        rule: "self.role != 'Consumer' || (has(self.destination) && has(self.identitySecretRef))",
        message: "a Consumer needs destination and identitySecretRef",
      },
    ],
  });

const repoStatus = z.object({
  destination: z.string().describe("group/project@branch"),
  sourceCommit: z.string().optional(),
  pushedCommit: z.string().optional(),
  lastSyncTime: z.string().optional(),
  bytesShipped: z.number().int().optional(),
  format: z.string().optional(),
  error: z.string().optional(),
  stale: z.array(z.string()).optional().describe("Consumer: object keys older than the destination; never pushed."),
});

export const partitionSyncStatus = z.object({
  ...commonStatusFields,
  repos: z.array(repoStatus).optional(),
  repoCount: z.number().int().optional(),
  synced: z.number().int().optional(),
  lastSyncTime: z.string().optional(),
  identity: s3IdentityStatus.optional(),
  unreadableKeys: z.array(z.string()).optional(),
});

export type PartitionSyncSpec = z.infer<typeof partitionSyncSpec>;
export type PartitionSyncStatus = z.infer<typeof partitionSyncStatus>;
export type PartitionRepoStatus = z.infer<typeof repoStatus>;

export const PartitionSyncCondition = {
  FetchFailed: "FetchFailed",
  UploadFailed: "UploadFailed",
  DecryptFailed: "DecryptFailed",
  VerifyFailed: "VerifyFailed",
  PushFailed: "PushFailed",
  Diverged: "Diverged",
} as const;

export const PartitionSyncReason = { Synced: "Synced", ExtractRejected: "ExtractRejected", MissingSecret: "MissingSecret" } as const;

export const partitionSyncKind: KindDefinition<PartitionSyncSpec, PartitionSyncStatus> = {
  kind: "PartitionSync",
  plural: "partitionsyncs",
  singular: "partitionsync",
  shortNames: ["psync"],
  spec: partitionSyncSpec,
  status: partitionSyncStatus,
  columns: [
    { name: "Role", type: "string", jsonPath: ".spec.role" },
    { name: "Repos", type: "integer", jsonPath: ".status.repoCount" },
    { name: "Synced", type: "integer", jsonPath: ".status.synced" },
  ],
  conditions: Object.values(PartitionSyncCondition),
  sources: (spec, status) => [
    { url: `s3 ${spec.bucket.endpoint}/${spec.bucket.bucket}/${spec.bucket.prefix ?? ""}` },
    ...(spec.repos ?? []).map((repo) => ({
      url: repo.source.url,
      ref: `branch ${repo.source.branch}`,
      revision: status?.repos?.find((r) => r.destination === `${repo.destination.group}/${repo.destination.project}@${repo.destination.branch}`)?.sourceCommit,
    })),
    ...(spec.destination ? [{ url: spec.destination.baseUrl }] : []),
  ],
  revision: (status) => (status?.repoCount === undefined ? undefined : `${status.synced ?? 0}/${status.repoCount} repos`),
};
