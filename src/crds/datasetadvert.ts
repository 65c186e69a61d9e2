// DatasetAdvert (dsa): a dataset kept in a git repo is advertised in etcd, under a lease, so
// that others can discover, follow and import it, with no central owner.

import { z } from "zod";
import { refShown, commonSpecFields, commonStatusFields, duration, gitSource, secretRef, type KindDefinition } from "./common.js";

const segment = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "must be letters, digits, '.', '_' or '-', with no '/'")
  .max(128);

export const datasetAdvertSpec = z.object({
  ...commonSpecFields,
  etcd: z.object({
    endpoints: z
      .array(z.string().regex(/^https?:\/\/[^\s/]+$/, "must be http(s)://host:port"))
      .min(1)
      .describe("etcd v3 client URLs, e.g. https://etcd.example:2379."),
    secretRef: secretRef.optional().describe("Secret with optional username and password (etcd auth), ca.crt, tls.crt and tls.key."),
    prefix: z
      .string()
      .regex(/^\/[^\s]*[^/\s]$/, "must start with / and not end with /")
      .default("/gitsync/datasets"),
  }),
  hub: segment.describe("What the data is about: a microservice or topic."),
  operator: segment.optional().describe("The publisher's name; default the resource's namespace."),
  source: gitSource.describe("The dataset repository."),
  description: z.string().max(4096).optional(),
  tags: z.record(z.string(), z.string()).optional().describe("Key/value metadata others search by."),
  license: z.string().optional(),
  ttl: duration.default("24h").describe("The advert's lease; it expires this long after the operator stops keeping it alive."),
});

export const datasetAdvertStatus = z.object({
  ...commonStatusFields,
  key: z.string().optional().describe("The etcd key of the advert."),
  operator: z.string().optional().describe("The publisher's name in the key."),
  advertisedCommit: z.string().optional(),
  advertisedCommitShort: z.string().optional().describe("The advertised commit, as branch@sha1:abcdef12."),
  publishedAt: z.string().optional(),
  leaseId: z.string().optional().describe("The etcd lease the advert is attached to (decimal)."),
  leaseExpiresAt: z.string().optional(),
  hubPeers: z.array(z.string()).optional().describe("Other operators advertising in the same hub."),
  files: z.number().int().optional(),
  bytes: z.number().int().optional(),
});

export type DatasetAdvertSpec = z.infer<typeof datasetAdvertSpec>;
export type DatasetAdvertStatus = z.infer<typeof datasetAdvertStatus>;

/** The negative-polarity conditions of a DatasetAdvert. */
export const DatasetAdvertCondition = {
  /** The dataset repository could not be read. */
  FetchFailed: "FetchFailed",
  /** etcd could not be reached, refused the credentials, or refused the write. */
  EtcdUnavailable: "EtcdUnavailable",
  /** Another publisher holds the key: same hub, date and operator name. */
  NameTaken: "NameTaken",
} as const;

export const DatasetAdvertReason = { Advertised: "Advertised", Published: "Published", Revoked: "Revoked" } as const;

export const datasetAdvertKind: KindDefinition<DatasetAdvertSpec, DatasetAdvertStatus> = {
  kind: "DatasetAdvert",
  plural: "datasetadverts",
  singular: "datasetadvert",
  shortNames: ["dsa"],
  spec: datasetAdvertSpec,
  status: datasetAdvertStatus,
  columns: [
    { name: "Hub", type: "string", jsonPath: ".spec.hub" },
    { name: "Operator", type: "string", jsonPath: ".status.operator" },
    { name: "Commit", type: "string", jsonPath: ".status.advertisedCommitShort" },
  ],
  conditions: Object.values(DatasetAdvertCondition),
  sources: (spec, status) => [{ url: spec.source.url, ref: refShown(spec.source.ref), revision: status?.advertisedCommit }],
  revision: (status) => status?.advertisedCommitShort,
};
